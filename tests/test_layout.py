"""The layout's rules, read from the source (every import, lazy ones included).

- the shim's package imports no dask: it runs inside go build's tool calls;
- worker/ imports nothing from build/ or verbs/: a worker has no head node;
- planner/, analysis/ and build/policy.py import no distributed/dask: pure deciders;
- only fgo.cli imports a verbs/ module;
- commands run from toolchain.py, and from the worker's compile runners (the executor
  and the shard task), which own their process handling (timeouts, kill on cancel).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FGO = Path(__file__).resolve().parents[1] / "fgo"

RUNS_COMMANDS = {"toolchain.py", "worker/executor.py", "split/shard_task.py"}


def modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(FGO)): ast.parse(p.read_text(), str(p)) for p in FGO.rglob("*.py")}


def imports(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def offenders(prefixes: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{name} imports {imp}" for name, tree in modules().items()
                  if name.startswith(prefixes) for imp in imports(tree)
                  if imp.startswith(forbidden))


def test_the_shim_imports_no_dask() -> None:
    assert offenders(("build/shim/",), ("dask", "distributed")) == []


def test_worker_side_imports_nothing_of_the_head() -> None:
    assert offenders(("worker/", "split/shard_task.py"), ("fgo.build", "fgo.verbs")) == []


def test_deciders_import_no_dask() -> None:
    assert offenders(("planner/", "analysis/", "build/policy.py"), ("dask", "distributed")) == []


def test_only_the_cli_imports_verbs() -> None:
    bad = [o for o in offenders(("",), ("fgo.verbs",)) if not o.startswith("cli.py ")]
    assert bad == []


@pytest.mark.parametrize("call", ["run", "Popen", "call", "check_call", "check_output"])
def test_commands_run_in_one_place(call: str) -> None:
    where = sorted(name for name, tree in modules().items()
                   for node in ast.walk(tree)
                   if isinstance(node, ast.Attribute) and node.attr == call
                   and isinstance(node.value, ast.Name) and node.value.id == "subprocess")
    assert set(where) <= RUNS_COMMANDS, where
