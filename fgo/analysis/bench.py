"""The stock compiler's `-bench=FILE` phase timings: the one parser (pure, no processes).

`compile -bench=FILE` appends one run to FILE (cmd/compile/internal/gc/main.go writebench,
base/timings.go Timings.Write): a header (`commit: go1...`, `goos:`, `goarch:`), then a line
per phase

    BenchmarkCompile:<pkg>:<label>   1   <ns> ns/op   <pct> %   [<events>...]

with labels `fe:init`, `fe:loadsys`, `fe:parse`, ..., `fe:escapes`, `be:compilefuncs`,
`be:dumpobj`, a `<group>:subtotal` after each group of phases, `unaccounted` (time between
phases) and `total`. Import paths contain no ':', so the label is what follows the first
':' after the package.

The phases are grouped into the three parts of the split-compile model
(README "Splitting a large package"):
  F = every `fe:*` phase (parse, typecheck, IR, inlining, escape analysis),
  B = `be:compilefuncs` (SSA and code generation of every function: what K shards divide),
  D = every other phase except subtotals, `unaccounted` and `total` (in go1.27: `be:dumpobj`,
      writing the object).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_LINE = re.compile(r"^BenchmarkCompile:(?P<pkg>[^:\s]+):(?P<label>\S+)\s+\d+\s+(?P<ns>\d+) ns/op")

NOT_A_PHASE = ("total", "unaccounted")


@dataclass
class Run:
    """One compile's timings: {label: seconds} as written, subtotals and total included."""

    package: str
    phases: dict[str, float] = field(default_factory=dict)


def parse(text: str) -> list[Run]:
    """Every run in TEXT, in order. A run starts after a `commit:` header, at `fe:init`
    (the first phase of every compile) or where the package changes; other lines are
    skipped. A label seen twice within a run keeps the later time."""
    runs: list[Run] = []
    header = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("commit:"):
            header = True
            continue
        m = _LINE.match(line)
        if not m:
            continue
        pkg, label = m["pkg"], m["label"]
        if header or not runs or label == "fe:init" or runs[-1].package != pkg:
            runs.append(Run(pkg))
            header = False
        runs[-1].phases[label] = int(m["ns"]) / 1e9
    return runs


def last_run(text: str) -> dict[str, float]:
    """The phases of the last run in TEXT ({} if none): a -bench file is appended to."""
    runs = parse(text)
    return runs[-1].phases if runs else {}


def by_package(text: str) -> dict[str, dict[str, float]]:
    """{package: phases of its last run in TEXT} (one file shared by several compiles)."""
    return {r.package: r.phases for r in parse(text)}


def fbd(phases: Mapping[str, float]) -> tuple[float, float, float]:
    """(F, B, D) seconds of one run's phases (see the module docstring)."""
    f = b = d = 0.0
    for label, sec in phases.items():
        if label.endswith("subtotal") or label in NOT_A_PHASE:
            continue
        if label.startswith("fe:"):
            f += sec
        elif label == "be:compilefuncs":
            b += sec
        else:
            d += sec
    return f, b, d


def summary(phases: Mapping[str, float]) -> dict[str, float]:
    """One run's phases without subtotals, plus "frontend" (F), "backend" (B), "dumpobj" (D)
    and "total" (the compiler's, else F + B + D)."""
    out = {k: v for k, v in phases.items() if not k.endswith("subtotal")}
    out["frontend"], out["backend"], out["dumpobj"] = fbd(phases)
    out.setdefault("total", out["frontend"] + out["backend"] + out["dumpobj"])
    return out


def summaries(text: str) -> dict[str, dict[str, float]]:
    """`summary` of each package's last run in TEXT."""
    return {pkg: summary(ph) for pkg, ph in by_package(text).items()}
