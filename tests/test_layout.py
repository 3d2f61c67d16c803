"""The layout's rules, read from the source: every import (lazy ones, relative ones and
importlib's included) and every way to start a process.

- Packages import only along ALLOWED, a graph without cycles: the rooms by where code runs
  (head, worker) sit above what both share (core modules, wire types, compiler, cluster,
  cache) and below verbs and the cli.
- What a worker runs never reaches the head, the verbs or the cli, followed module by
  module through every import (transitively).
- The shim, the deciders and everything the head runs in-process for a worker's job import
  no dask, transitively.
- Processes start in two places only: fgo/toolchain.py (the one place fgo runs commands)
  and fgo/worker/runner.py (the worker's compiler processes, which it cancels and nices).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pytest

FGO = Path(__file__).resolve().parents[1] / "fgo"

# A package may import only these (and itself). "core" is every module directly in fgo/.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "analysis": {"core"},
    "report": {"core"},
    "verify": {"core"},
    "cluster": {"core"},
    "compiler": {"core", "analysis"},
    "planner": {"core", "analysis", "report"},
    "cache": {"core", "cluster"},
    "worker": {"core", "compiler", "cluster", "cache"},
    "head": {"core", "compiler", "worker", "cluster", "cache", "planner", "analysis", "report",
             "verify"},
    "verbs": {"core", "compiler", "worker", "cluster", "cache", "planner", "analysis", "report",
              "verify", "head"},
    "cli": {"core", "verbs"},
}
# Modules that start processes.
RUNS_PROCESSES = {"fgo.toolchain", "fgo.worker.runner"}
# Callables that start a process, by their module's own name for them.
PROCESS_STARTERS = {
    "subprocess": {"Popen", "run", "call", "check_call", "check_output", "getoutput",
                   "getstatusoutput"},
    "os": {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execl",
           "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe", "spawnl",
           "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
    "pty": {"spawn", "fork"},
    "multiprocessing": {"Process"},
}
# What runs on a worker, and what must not import dask (even transitively).
WORKER_ROOTS = ("fgo.worker",)
NO_DASK_ROOTS = ("fgo.head.shim", "fgo.head.policy", "fgo.head.placement", "fgo.head.slots",
                 "fgo.head.headload", "fgo.planner", "fgo.analysis", "fgo.report",
                 "fgo.verify", "fgo.compiler", "fgo.worker.executor", "fgo.worker.idle",
                 "fgo.wire", "fgo.settings", "fgo.toolchain")
DASK = ("dask", "distributed")


@dataclass
class Module:
    name: str
    package: str                                         # its room (see package_of)
    tree: ast.Module
    imports: set[str] = field(default_factory=set)      # absolute names, as written
    problems: list[str] = field(default_factory=list)   # process starts, unnamed imports


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(module: str, root: Path) -> str:
    """A module's room: the subpackage of fgo it is in, else "core" (cli on its own)."""
    parts = module.split(".")
    if module == "fgo.cli":
        return "cli"
    if len(parts) >= 2 and (root / parts[1]).is_dir():
        return parts[1]
    return "core"


def scan(root: Path = FGO) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        modules[name] = _scan_one(name, package_of(name, root), path.read_text(),
                                  path.name == "__init__.py")
    return modules


_SCANNED: dict[tuple[str, str, str, bool], Module] = {}


def _scan_one(name: str, package: str, text: str, is_package: bool) -> Module:
    """One module, scanned once per text: each mutant tree re-scans only what it changed."""
    key = (name, package, text, is_package)
    if key not in _SCANNED:
        mod = Module(name, package, ast.parse(text, name))
        _collect(mod, is_package)
        _SCANNED[key] = mod
    return _SCANNED[key]


def _collect(mod: Module, is_package: bool) -> None:
    """MOD's imports (relative ones resolved; importlib.import_module and __import__ with a
    literal name, and the cli's verb table), and its process starts."""
    aliases: dict[str, str] = {}   # local name -> what it stands for ("subprocess.run")
    annotations = _annotation_nodes(mod.tree)
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                mod.imports.add(a.name)
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(mod.name, is_package, node.level, node.module)
            mod.imports.add(base)
            for a in node.names:
                mod.imports.add(f"{base}.{a.name}")
                aliases[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.Call):
            target = _dotted(node.func, aliases)
            if target in ("importlib.import_module", "__import__", "builtins.__import__"):
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    mod.imports.add(arg.value)
                elif mod.name != "fgo.cli":  # the cli's names come from its verb table
                    mod.problems.append(f"{mod.name}: imports a module it does not name "
                                        f"(line {node.lineno})")
    if mod.name == "fgo.cli":
        mod.imports |= _verb_table(mod.tree)
    for node in ast.walk(mod.tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and id(node) not in annotations:
            target = _dotted(node, aliases)
            head, _, name = (target or "").rpartition(".")
            if name in PROCESS_STARTERS.get(head, ()) and mod.name not in RUNS_PROCESSES:
                mod.problems.append(f"{mod.name}: starts a process with {target} "
                                    f"(line {node.lineno})")


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """What NODE names, through the module's import aliases ("sp.run" -> "subprocess.run")."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value, aliases)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _annotation_nodes(tree: ast.Module) -> set[int]:
    """The nodes inside type annotations (naming subprocess.Popen there starts nothing)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots += [a.annotation for a in [*node.args.args, *node.args.kwonlyargs,
                                              *node.args.posonlyargs] if a.annotation]
            roots += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr in ("Popen", "CompletedProcess", "Future"):
            roots.append(node)  # generic aliases, e.g. subprocess.Popen[bytes] in a cast
    return {id(n) for r in roots for n in ast.walk(r)}


def _verb_table(tree: ast.Module) -> set[str]:
    """The modules of the cli's VERBS table ({"build": ("fgo.verbs.build:build", ...)})."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("fgo.") and ":" in node.value:
            out.add(node.value.split(":")[0])
    return out


def resolve(name: str, modules: dict[str, Module]) -> str | None:
    """The fgo module NAME refers to: itself, or the longest prefix that is a module
    ("fgo.head.policy.judge" -> "fgo.head.policy"); None outside fgo."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def module_graph(modules: dict[str, Module]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for mod in modules.values():
        for imp in mod.imports:
            target = resolve(imp, modules) if imp.startswith("fgo") else None
            if target and target != mod.name:
                g.add_edge(mod.name, target)
    return g


def package_graph(modules: dict[str, Module]) -> nx.DiGraph:
    g = nx.DiGraph()
    for a, b in module_graph(modules).edges:
        pa, pb = modules[a].package, modules[b].package
        if pa != pb:
            g.add_edge(pa, pb, via=f"{a} -> {b}")
    return g


def forbidden_edges(modules: dict[str, Module]) -> list[str]:
    g = package_graph(modules)
    return sorted(f"{a} may not import {b} ({data['via']})" for a, b, data in g.edges(data=True)
                  if b not in ALLOWED.get(a, set()))


def reaches(modules: dict[str, Module], roots: tuple[str, ...], forbidden: tuple[str, ...]
            ) -> list[str]:
    """The modules under ROOTS from which an import chain reaches a name starting with one
    of FORBIDDEN (an fgo module, or an outside package such as distributed)."""
    g = module_graph(modules)
    bad = []
    for name in modules:
        if not name.startswith(roots):
            continue
        reached = {name} | nx.descendants(g, name)
        for r in sorted(reached):
            outside = [i for i in modules[r].imports if i.startswith(forbidden)]
            if r.startswith(forbidden) or outside:
                bad.append(f"{name} reaches {outside[0] if outside else r} via {r}")
                break
    return bad


def code_problems(modules: dict[str, Module]) -> list[str]:
    """Process starts outside RUNS_PROCESSES, and imports of modules the code does not name."""
    return sorted(p for m in modules.values() for p in m.problems)


# ------------------------------------------------------------------ the rules


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan()


def test_every_package_is_a_room_of_the_allowed_graph(modules: dict[str, Module]) -> None:
    assert {m.package for m in modules.values()} <= set(ALLOWED)


def test_the_allowed_graph_has_no_cycle() -> None:
    g = nx.DiGraph([(a, b) for a, bs in ALLOWED.items() for b in bs])
    assert nx.is_directed_acyclic_graph(g)


def test_packages_import_only_along_the_allowed_graph(modules: dict[str, Module]) -> None:
    assert forbidden_edges(modules) == []


def test_no_cycle_between_packages(modules: dict[str, Module]) -> None:
    assert list(nx.simple_cycles(package_graph(modules))) == []


def test_what_a_worker_runs_never_reaches_the_head(modules: dict[str, Module]) -> None:
    assert reaches(modules, WORKER_ROOTS, ("fgo.head", "fgo.verbs", "fgo.cli")) == []


def test_the_shim_deciders_and_in_process_jobs_import_no_dask(modules: dict[str, Module]) -> None:
    assert reaches(modules, NO_DASK_ROOTS, DASK) == []


def test_only_the_cli_imports_verbs(modules: dict[str, Module]) -> None:
    g = module_graph(modules)
    assert sorted(a for a, b in g.edges if b.startswith("fgo.verbs")
                  and not a.startswith("fgo.verbs") and a != "fgo.cli") == []


def test_processes_start_in_two_places_and_every_import_is_named(
        modules: dict[str, Module]) -> None:
    assert code_problems(modules) == []


# ------------------------------------------------------------------ the rules can fail

def _mutant(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    """A copy of fgo/ with FILES (path under fgo/ -> text appended) changed, scanned."""
    import shutil
    root = tmp_path / "fgo"
    shutil.copytree(FGO, root, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, text in files.items():
        path = root / rel
        path.write_text((path.read_text() if path.exists() else "") + "\n" + text + "\n")
    return scan(root)


MUTATIONS = {
    "relative import from the worker into the head": (
        {"worker/executor.py": "from ..head import policy"}, "forbidden"),
    "importlib with a name": (
        {"worker/idle.py": "import importlib\nimportlib.import_module('fgo.head.front')"},
        "forbidden"),
    "importlib with a computed name": (
        {"report/trace.py": "import importlib\nimportlib.import_module('fgo.' + 'head')"},
        "code"),
    "from subprocess import run": (
        {"head/front.py": "from subprocess import run\nrun(['true'])"}, "code"),
    "import subprocess as sp": (
        {"cache/server.py": "import subprocess as sp\nsp.Popen(['true'])"}, "code"),
    "os.system": ({"verify/diff.py": "import os\nos.system('true')"}, "code"),
    "os.execvp": ({"head/headrun.py": "import os\nos.execvp('true', ['true'])"}, "code"),
    "asyncio subprocess": (
        {"cluster/rpc.py": "import asyncio\nasyncio.create_subprocess_exec('true')"}, "code"),
    "a cycle: the cache imports the head": (
        {"cache/local.py": "def f():\n    from fgo.head import session"}, "cycle"),
    "a worker module reaching the head through core": (
        {"fileio.py": "def f():\n    import fgo.head.front"}, "worker"),
    "a decider importing distributed lazily": (
        {"head/policy.py": "def f():\n    import distributed"}, "dask"),
}


@pytest.mark.parametrize("what", sorted(MUTATIONS))
def test_each_forbidden_import_fails_the_rules(tmp_path: Path, what: str) -> None:
    files, rule = MUTATIONS[what]
    mutant = _mutant(tmp_path, files)
    failures = {
        "forbidden": forbidden_edges(mutant),
        "code": code_problems(mutant),
        "cycle": list(nx.simple_cycles(package_graph(mutant))),
        "worker": reaches(mutant, WORKER_ROOTS, ("fgo.head", "fgo.verbs", "fgo.cli")),
        "dask": reaches(mutant, NO_DASK_ROOTS, DASK),
    }
    assert failures[rule], f"{what}: the {rule} rule did not fail"

