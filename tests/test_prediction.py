"""fgo.planner.prediction: go's own plan (`go build -n`) predicts every compile of the real
build, and the content key matches a real request only when its inputs are the same.
Real go commands on tests/data/hello; the key and the normalization are pure."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from fgo import toolchain
from fgo.planner import prediction as pr

HELLO = Path(__file__).parent / "data" / "hello"


def test_normalize_argv() -> None:
    argv = ["/go/pkg/tool/linux_amd64/compile", "-o", "/tmp/go-build123/b042/_pkg_.a",
            "-trimpath", "/tmp/go-build123/b042=>", "-p", "m/x", "-buildid", "abc/abc", "-c=4",
            "-importcfg", "/tmp/go-build123/b042/importcfg", "-pack", "./x.go", "/abs/y.go"]
    assert pr.normalize_argv(argv, "/src/m/x", work="/tmp/go-build123") == (
        "compile", "-o", "$WORK/b/_pkg_.a", "-trimpath", "$WORK/b=>", "-p", "m/x",
        "-buildid", "$BUILDID", "-importcfg", "$WORK/b/importcfg", "-pack", "/src/m/x/x.go", "/abs/y.go")
    # the script's own $WORK spelling normalizes the same way
    script = [a.replace("/tmp/go-build123", "$WORK").replace("b042", "b007") for a in argv]
    assert pr.normalize_argv(script, "/src/m/x") == pr.normalize_argv(argv, "/src/m/x", work="/tmp/go-build123")
    # a cgo package's generated sources are in $WORK, whichever way it is spelled
    cgo = ["compile", "-p", "m/x", "$WORK/b042/_cgo_gotypes.go", "/tmp/go-build9/b042/x.cgo1.go"]
    assert pr.normalize_argv(cgo, "/src/m/x", work="/tmp/go-build9")[3:] == (
        "$WORK/b/_cgo_gotypes.go", "$WORK/b/x.cgo1.go")


def test_normalize_importcfg() -> None:
    text = ("# import config\npackagefile fmt=/tmp/go-build1/b002/_pkg_.a\n"
            "importmap golang.org/x/net=vendor/golang.org/x/net\npackagefile os=/root/.cache/go-build/ab/cd-d\n")
    cfg, imports = pr.normalize_importcfg(text)
    assert imports == ("fmt", "os")
    assert cfg == "packagefile fmt\nimportmap golang.org/x/net=vendor/golang.org/x/net\npackagefile os\n"


def _pred(**kw) -> pr.Prediction:
    base = dict(package="m/x", p="m/x", argv=("compile", "-p", "m/x", "/s/x.go"), cwd="/s",
                sources=("/s/x.go",), imports=("fmt",), importcfg="packagefile fmt\n")
    return pr.Prediction(**{**base, **kw})


def test_content_key_changes_with_every_input() -> None:
    shas = {"/s/x.go": "1" * 64}
    key = pr.content_key(_pred(), shas.__getitem__, {"fmt": "a" * 64})
    assert key == pr.content_key(_pred(cwd="/elsewhere"), shas.__getitem__, {"fmt": "a" * 64})
    assert key != pr.content_key(_pred(), {"/s/x.go": "2" * 64}.__getitem__, {"fmt": "a" * 64})
    assert key != pr.content_key(_pred(), shas.__getitem__, {"fmt": "b" * 64})
    assert key != pr.content_key(_pred(argv=("compile", "-p", "m/x", "-N", "/s/x.go")), shas.__getitem__,
                                 {"fmt": "a" * 64})
    assert key != pr.content_key(_pred(embedcfg="{}"), shas.__getitem__, {"fmt": "a" * 64})
    with pytest.raises(KeyError, match="fmt"):
        pr.content_key(_pred(), shas.__getitem__, {})


def test_embedded_files_are_inputs() -> None:
    script = ("# m/x\ncat >$WORK/b001/importcfg << 'EOF' # internal\n# import config\nEOF\n"
              "cat >$WORK/b001/embedcfg << 'EOF' # internal\n"
              '{"Patterns":{"*.txt":["a.txt","b.txt"]},"Files":{"b.txt":"/s/b.txt","a.txt":"/s/a.txt"}}\nEOF\n'
              "cd /s\n/go/pkg/tool/linux_amd64/compile -o $WORK/b001/_pkg_.a -p m/x -embedcfg "
              "$WORK/b001/embedcfg -importcfg $WORK/b001/importcfg ./x.go\n")
    p = pr.parse(script)["m/x"]
    assert p.inputs == ("/s/a.txt", "/s/b.txt") and p.sources == ("/s/x.go",) and p.imports == ()
    shas = {"/s/x.go": "0", "/s/a.txt": "1", "/s/b.txt": "2"}
    edited = {**shas, "/s/b.txt": "3"}
    assert pr.content_key(p, shas.__getitem__, {}) != pr.content_key(p, edited.__getitem__, {})


def test_an_embedcfg_without_a_final_newline_ends_at_its_glued_eof() -> None:
    """go prints a written file as its text and then `EOF`: an embedcfg (indented JSON, no
    final newline) ends in `}EOF`. Read as a line of its own, the document ran on into the
    next package's, the plan failed and the build was not pipelined (std has 27 packages
    that embed)."""
    cfg = '{\n\t"Files": {\n\t\t"a.txt": "/s/a.txt"\n\t}\n}'
    script = ("# m/x\ncat >$WORK/b001/importcfg << 'EOF' # internal\n# import config\nEOF\n"
              f"cat >$WORK/b001/embedcfg << 'EOF' # internal\n{cfg}EOF\n"
              "cd /s\n/go/pkg/tool/linux_amd64/compile -o $WORK/b001/_pkg_.a -p m/x -embedcfg "
              "$WORK/b001/embedcfg -importcfg $WORK/b001/importcfg ./x.go\n"
              "# m/y\ncat >$WORK/b002/importcfg << 'EOF' # internal\npackagefile m/x=$WORK/b001/_pkg_.a\nEOF\n"
              "/go/pkg/tool/linux_amd64/compile -o $WORK/b002/_pkg_.a -p m/y "
              "-importcfg $WORK/b002/importcfg ./y.go\n")
    got = pr.parse(script)
    assert set(got) == {"m/x", "m/y"} and got["m/y"].imports == ("m/x",)
    assert got["m/x"].embedcfg == cfg and got["m/x"].inputs == ("/s/a.txt",)
    assert pr.heredoc(["a", "b", "EOF", "c"], 0) == ("a\nb\n", 3)
    assert pr.heredoc(["a", "}EOF", "c"], 0) == ("a\n}", 2)
    assert pr.heredoc(["a"], 0) == (None, 1)


def test_a_compile_line_is_read_as_the_shell_reads_it() -> None:
    """compile_argv reads a plain line with a pattern and hands shlex only what needs a
    shell's reading; either way the words are shlex's, and other commands are skipped."""
    import shlex
    lines = ['/t/compile -o $WORK/b001/_pkg_.a -trimpath "$WORK/b001=>" -p m/x ./x.go',
             '"/my go/pkg/tool/compile" -p "a b" -D "" x.go',
             "/t/compile -p 'q' a\\ b.go # comment",
             '/t/compile -p "x"y"z" w.go', '/t/compile']
    for line in lines:
        assert pr.compile_argv(line) == shlex.split(line, comments=True), line
    assert pr.compile_argv("mkdir -p $WORK/b001/") is None
    assert pr.compile_argv("/t/asm -p x") is None and pr.compile_argv("") is None
    assert pr.compile_argv("TERM='dumb' /t/compile -p x") is None  # as shlex reads it
    with pytest.raises(pr.PredictError, match="cannot parse"):
        pr.compile_argv('/t/compile -p "x')


def test_a_module_that_embeds_is_predicted_as_it_builds(tmp_path: Path) -> None:
    """`go build -n` of a module whose package embeds a file, against the `-x` of its real
    build: its compile and its dependent's are predicted, field for field."""
    (tmp_path / "go.mod").write_text("module example.com/e\n\ngo 1.22\n")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "a.txt").write_text(f"{tmp_path}\n")
    (tmp_path / "assets" / "assets.go").write_text(
        'package assets\n\nimport _ "embed"\n\n//go:embed a.txt\nvar A string\n')
    (tmp_path / "main.go").write_text(
        'package main\n\nimport "example.com/e/assets"\n\nfunc main() { println(assets.A) }\n')
    env = toolchain.go_env(GOFLAGS="")
    args = ["-o", str(tmp_path / "e"), "."]
    planned = pr.plan(args, cwd=tmp_path, env=env)
    real = toolchain.run_go(["build", "-p", "1", "-x", *args], cwd=tmp_path, env=env)
    built = {p.p: p for p in pr.parse(real.stderr).values()}
    for name in ("example.com/e/assets", "main"):
        want = next(p for p in planned.values() if p.p == name)
        assert dataclasses.replace(want, package="") == dataclasses.replace(built[name], package="")
    assert planned["example.com/e/assets"].inputs == (str(tmp_path / "assets" / "a.txt"),)


def test_parse_errors() -> None:
    with pytest.raises(pr.PredictError, match="here-document"):
        pr.parse("cat >$WORK/b001/importcfg << 'EOF' # internal\npackagefile fmt=x\n")
    with pytest.raises(pr.PredictError, match="importcfg"):
        pr.parse("# m/x\ncd /s\n/go/pkg/tool/linux_amd64/compile -o $WORK/b001/_pkg_.a -p m/x ./x.go\n")
    with pytest.raises(pr.PredictError, match="go build -n"):
        pr.plan(["./no/such/package"], cwd=HELLO)


@pytest.fixture(scope="module")
def planned() -> dict[str, pr.Prediction]:
    return pr.plan(["-a", "-o", "/dev/null", "."], cwd=HELLO, env=toolchain.go_env(GOFLAGS=""))


def test_plan_of_hello(planned: dict[str, pr.Prediction]) -> None:
    main = planned["example.com/hello"]
    assert main.p == "main" and main.sources == (str(HELLO / "main.go"),)
    assert set(main.imports) == {"example.com/hello/greet", "fmt", "os", "runtime"}
    assert planned["example.com/hello/greet"].imports == ("strings",)
    assert {"runtime", "fmt", "internal/abi"} <= set(planned)
    for p in planned.values():
        assert "$BUILDID" in p.argv and not any(a.startswith("-c=") for a in p.argv)
        assert not any("$WORK/b0" in a for a in p.argv)
        assert all(Path(s).is_file() for s in p.sources if not s.startswith("$WORK"))
    # asm packages read the symabis that asm writes first: keyed only once it exists
    assert planned["runtime"].work_inputs == ("$WORK/b/symabis",)
    assert planned["example.com/hello/greet"].work_inputs == ()


def test_prediction_is_the_real_build(planned: dict[str, pr.Prediction], tmp_path: Path) -> None:
    """A real cold build's compiles (`-x`, one at a time so its `cd` lines are in order)
    are the predicted ones after normalization, every field but the header name."""
    env = toolchain.go_env(GOFLAGS="", GOCACHE=str(tmp_path / "cache"))
    proc = toolchain.run_go(["build", "-p", "1", "-x", "-a", "-o", str(tmp_path / "hello"), "."],
                            cwd=HELLO, env=env)
    real = {p.p: p for p in pr.parse(proc.stderr).values()}
    want = {p.p: p for p in planned.values()}
    assert set(real) == set(want) and len(real) == len(planned) > 50
    differ = [p for p in want if dataclasses.replace(want[p], package="") != dataclasses.replace(real[p], package="")]
    assert differ == []


def test_export_data_sha_survives_the_build_id_rewrite(tmp_path: Path) -> None:
    """The early export file has the compile's -buildid; go rewrites the archive's build ID
    afterwards (`go tool buildid -w`). Their export data hashes alike, their bytes do not."""
    from fgo.compiler import flags as cpflags, patched as cp
    from fgo.compiler import early_export as ee
    from fgo.compiler import harness

    harness._go(["build", "./greet"], HELLO)
    argv, cwd = harness.compile_command(HELLO, "example.com/hello/greet", tmp_path / "work")
    out, early = tmp_path / "greet.a", tmp_path / "early.a"
    cmd = cpflags.with_flags(harness._set_output(argv, out), cpflags.early_export(early), compiler=cp.ensure_compiler().path)
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    before = out.read_bytes()
    assert ee.compare(early.read_bytes(), before).identical
    toolchain.run_go(["tool", "buildid", "-w", str(out)], cwd=tmp_path)
    after = out.read_bytes()
    assert after != before and len(after) == len(before)
    assert pr.export_data_sha(early.read_bytes()) == pr.export_data_sha(after) == pr.export_data_sha(before)
    # a different export (another source) hashes differently
    other = tmp_path / "other"
    shutil.copytree(HELLO, other)
    (other / "greet" / "greet.go").write_text((other / "greet" / "greet.go").read_text()
                                              + "\nfunc Bye() string { return \"bye\" }\n")
    argv2, cwd2 = harness.compile_command(other, "example.com/hello/greet", tmp_path / "work2")
    subprocess.run(harness._set_output(argv2, tmp_path / "other.a"), cwd=cwd2, check=True, capture_output=True)
    assert pr.export_data_sha((tmp_path / "other.a").read_bytes()) != pr.export_data_sha(after)
