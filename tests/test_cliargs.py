"""How `fgo build`, `fgo plan` and `fgo verify` read their command line (no builds)."""

from __future__ import annotations

import pytest

from fgo.cliargs import bind_optional_values
from fgo.goflags import split_go_args, without_output_flag
from fgo.cluster.connect import dashboard_link


def parse(verb: str, *args: str) -> dict:
    from fgo.cli import cli
    command = cli.get_command(None, verb)  # type: ignore[arg-type]
    return command.make_context(verb, list(args)).params


@pytest.mark.parametrize("args, project, split, go_args", [
    (["--split-large", "p"], "p", "auto", ()),
    (["--split-large", "p", "--", "-o", "/tmp/h"], "p", "auto", ("-o", "/tmp/h")),
    (["--split-large", "."], ".", "auto", ()),
    (["--split-large"], ".", "auto", ()),
    (["p", "--split-large"], "p", "auto", ()),
    (["--split-large=3", "p"], "p", "3", ()),
    (["--split-large", "2.5", "p"], "p", "2.5", ()),
    (["--split-large", "0"], ".", "0", ()),
    (["--check", "--split-large", "--shards", "2", "p"], "p", "auto", ()),
    (["--", "-o", "x", "./cmd/app"], ".", None, ("-o", "x", "./cmd/app")),
    ([], ".", None, ()),
    (["p", "./a", "--", "-a"], "p", None, ("./a", "-a")),
])
def test_build_reads_every_spelling(args, project, split, go_args) -> None:
    params = parse("build", *args)
    assert (params["project"], params["split_large"], params["go_args"]) == (project, split, go_args)


def test_plan_and_verify_default_to_the_current_directory() -> None:
    assert parse("plan")["project"] == "."
    assert parse("plan", "--split-large", "q")["project"] == "q"
    params = parse("verify", "--", "-o", "/tmp/h", "./greet")
    assert str(params["project"]) == "." and params["go_build_flags"] == ("-o", "/tmp/h", "./greet")


def test_only_a_number_binds_to_an_optional_value() -> None:
    opts = frozenset({"--split-large"})
    assert bind_optional_values(["--split-large", "proj"], opts) == ["--split-large=auto", "proj"]
    assert bind_optional_values(["--split-large", "1e1"], opts) == ["--split-large", "1e1"]
    assert bind_optional_values(["--split-large", "-v"], opts) == ["--split-large", "-v"]
    assert bind_optional_values(["x", "--split-large"], opts) == ["x", "--split-large"]


@pytest.mark.parametrize("args, flags, packages", [
    (["-o", "/tmp/h", "."], ["-o", "/tmp/h"], ["."]),
    (["./greet"], [], ["./greet"]),
    (["-a", "-tags", "x y", "-o=z", "./..."], ["-a", "-tags", "x y", "-o=z"], ["./..."]),
    (["-trimpath"], ["-trimpath"], []),
    (["-a", "--", "-weird"], ["-a"], ["-weird"]),
    (["./a", "-o", "x"], [], ["./a", "-o", "x"]),  # go's flags end at the first package
])
def test_go_args_split_as_go_reads_them(args, flags, packages) -> None:
    assert split_go_args(args) == (flags, packages)


def test_a_dashboard_link_only_where_there_is_a_dashboard() -> None:
    link = "http://127.0.0.1:8787/status"
    assert dashboard_link({"dashboard": 8787}, link, has_bokeh=True) == link
    assert dashboard_link({}, link, has_bokeh=True) is None          # --no-dashboard
    assert dashboard_link({"dashboard": 8787}, link, has_bokeh=False) is None


def test_without_output_flag() -> None:
    assert without_output_flag(["-a", "-o", "x", "-o=y", "-tags", "t"]) == ["-a", "-tags", "t"]
