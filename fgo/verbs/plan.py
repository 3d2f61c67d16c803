"""`fgo plan [PROJECT] [-- GO_BUILD_ARGS]`: the build's shape and split plan, without building."""

from __future__ import annotations

import json
import sys

import click

from fgo.head.driver import project_dir
from fgo.cliargs import go_args_command
from fgo.errors import FgoError
from fgo.planner.buildplan import make_plan, write_dot


@go_args_command()
@click.argument("project", default=".")
@click.argument("go_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--dot", metavar="FILE", help="Write the package graph for Graphviz.")
@click.option("--hosts", type=click.IntRange(1), default=1, show_default=True,
              help="Hosts to plan for: a split only pays on other hosts (go's -c already "
                   "uses this one's cores).")
@click.option("--split-large", is_flag=False, flag_value="auto", default="auto",
              metavar="[=SECONDS]", help="The threshold fgo build --split-large would use.")
def plan(project: str, go_args: tuple[str, ...], as_json: bool, dot: str | None,
         hosts: int, split_large: str) -> None:
    """Show the action graph of building PROJECT (default: the current directory) and
    what --split-large would split; arguments after -- go to go build."""
    proj = project_dir(project)
    try:
        result = make_plan(proj, list(go_args), hosts, split_large)
    except ValueError:
        raise FgoError(f"--split-large takes SECONDS, not {split_large!r}") from None
    if dot:
        write_dot(dot, result)
    result.pop("_graph")
    if as_json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    out = [f"{result['actions']['compile']} compiles + {result['actions']['link']} link(s); "
           f"depth {result['depth']}; work {result['work_s']:.1f}s; critical path "
           f"{result['critical_path']['seconds']:.1f}s over {len(result['critical_path']['packages'])}"
           f" packages (costs from the {result['costs_from']}); planned in {result['plan_s']:.2f}s",
           "width by level: " + " ".join(map(str, result["width_by_level"])), "",
           f"{'critical path':<60} {'cost s':>8}"]
    cost = {r["package"]: r["cost_s"] for r in result["packages"]}
    out += [f"  {p:<58} {cost.get(p, 0):8.2f}" for p in result["critical_path"]["packages"]]
    out += ["", f"--split-large would split {len(result['split'])} package(s)"
                + (":" if result["split"] else "")]
    out += [f"  {s['package']:<50} K={s['k']}  gain {s['gain_s']:.2f}s" for s in result["split"]]
    click.echo("\n".join(out))
