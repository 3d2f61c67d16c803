"""What a second core is worth on this machine, for compiles: the ceiling of experiment 8.

Experiment 8 holds two cores' worth of fgo to `go build -p 1` on one core, with the other
core idle. If a compile on core 0 runs slower while core 1 compiles too (a shared L3 and
memory bus, or two vCPUs that are hyperthreads of one physical core on the host), two cores
are worth less than 2× one, whoever drives them: the ceiling of any two-core build over the
one-core baseline is 2 / slowdown. Measured here with go alone, so that nothing of fgo's is
in it: the same `go build -a -p 1` pinned to core 0, alone, and with a second copy of it
running on core 1 (its own GOCACHE, restarted until the measured build ends). Pairs
alternate which comes first; the slowdown is the median of each pair's wall ratio, and the
CPU seconds of the measured build say whether it waited or its core did less per second.

Results: results/interference.json (`pytest experiments/test_8_scaleout.py --benchmark -k
interference`).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from experiments import lab
from fgo import toolchain

RESULTS = "interference"


def slowdown(alone: Sequence[float], together: Sequence[float]) -> float:
    """The median, over pairs, of a build's time beside another build over its time alone."""
    if not alone or len(alone) != len(together):
        raise ValueError("one time alone and one beside another build per pair")
    return statistics.median(t / a for a, t in zip(alone, together))


def ceiling(slow: float, cores: int = 2) -> float:
    """The most CORES cores can give over one, when each runs at 1/SLOW of a lone core."""
    return cores / slow


def summary(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """PROJECT's pairs in one row: the slowdown (wall, and CPU seconds) and the ceiling."""
    pairs = sorted({r["pair"] for r in rows})
    by = {(r["pair"], r["side"]): r for r in rows}
    alone = [by[(i, "alone")]["wall_s"] for i in pairs]
    beside = [by[(i, "beside")]["wall_s"] for i in pairs]
    wall = slowdown(alone, beside)
    cpu = slowdown([by[(i, "alone")]["cpu_s"] for i in pairs],
                   [by[(i, "beside")]["cpu_s"] for i in pairs])
    return {"project": name, "side": "summary", "pairs": len(pairs),
            "slowdowns": [round(t / a, 3) for a, t in zip(alone, beside)],
            "slowdown": round(wall, 3), "cpu_slowdown": round(cpu, 3),
            "ceiling_2_cores": round(ceiling(wall), 3),
            "alone_median_s": round(statistics.median(alone), 3),
            "beside_median_s": round(statistics.median(beside), 3)}


@contextlib.contextmanager
def compile_beside(core: int, argv: Sequence[str], cwd: Path, env: dict[str, str]
                   ) -> Iterator[str]:
    """One package's own compile command (ARGV, e.g. ec2's stock compile, its dependencies
    cached) over and over on CORE until the block ends: a giant compile beside the measured
    one, as the two processes of a split in two run. Yields how."""
    with lab.pinned_loop(core, argv, env, cwd):
        yield f"the same package's stock compile (-c=1) in a loop pinned to core {core}"


@contextlib.contextmanager
def beside(core: int, target: str, binary: bool, env: dict[str, str], cwd: Path
           ) -> Iterator[str]:
    """`go build -a -p 1 TARGET` over and over on CORE, each round into an emptied GOCACHE of
    its own (every round compiles everything), until the block ends. Yields how."""
    with tempfile.TemporaryDirectory(prefix="fgo-beside-") as out:
        argv = [str(toolchain.go_binary()), "build", "-a", "-p", "1",
                *(["-o", str(Path(out) / "out")] if binary else []), target]
        with lab.pinned_loop(core, argv, env, cwd, fresh_cache=True):
            yield f"the same `go build -a -p 1` in a loop pinned to core {core}, its own GOCACHE"
