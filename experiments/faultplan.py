"""The fault campaign's decisions (experiments/test_12_faults.py), as pure functions.

What faults exist and how each is injected (`KINDS`), drawing a campaign's faults from a
seed (`draw`), classifying one build under a fault from what was observed (`classify`),
and counting the outcomes (`tally`, `catch_rate`). No I/O here: the test module runs the
cluster, injects, observes and writes the results.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from fgo.head import checks

# When a fault is injected:
#   "compile": after the campaign has seen the Nth compile start on the workers, at a
#              moment the target has one running (a kill that hits no compile is no fault);
#   "before":  before the build starts (the worker's environment, disk or link);
#   "connect": once the head holds a connection to the scheduler, before any compile.
TIMINGS = ("compile", "before", "connect")


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int            # relative frequency in the draw
    timing: str            # one of TIMINGS
    env: str = ""          # FGO_FAULT of the target worker (fgo/worker/faults.py)
    projects: tuple[str, ...] = ("hello", "large")
    split: bool = False    # build with every package split (--split-large=0 --shards 2)
    hosts: bool = False    # needs emulated hosts (a network namespace per worker)
    shared_cache: bool = False  # needs the cluster tier primed with the project's entries


KINDS: dict[str, Kind] = {k.name: k for k in [
    Kind("kill", 4, "compile"),                       # SIGKILL of a worker mid-compile
    Kind("stop", 2, "compile"),                       # SIGSTOP mid-compile, SIGCONT after
    Kind("scheduler-restart", 1, "compile"),          # SIGKILL of the scheduler, a new one
    Kind("partition", 2, "compile", hosts=True),      # the worker's link down mid-compile
    Kind("slow-link", 2, "compile", hosts=True),      # the worker's link to 2 Mbit/s (tbf)
    Kind("corrupt-transfer", 1, "before", env="corrupt-transfer"),
    Kind("corrupt-shard", 1, "before", env="corrupt-shard", projects=("large",), split=True),
    Kind("truncate-shard", 1, "before", env="truncate-shard", projects=("large",), split=True),
    Kind("full-disk", 1, "before"),                   # the worker's store on a 512 kB tmpfs
    Kind("stop-before-connect", 1, "before"),
    Kind("stop-during-connect", 1, "connect"),
    Kind("wrong", 1, "before", env="wrong-archive"),  # every compile -N -l
    Kind("wrong-q", 4, "before", env="wrong:{q}"),    # a share q of compiles -N -l
    Kind("cache-altered", 1, "before", shared_cache=True),  # a body's byte flipped on disk
    Kind("cache-forged", 1, "before", shared_cache=True),   # body and index replaced alike
]}


@dataclass(frozen=True)
class Fault:
    index: int
    kind: str
    project: str
    worker: int            # target worker (the scheduler for scheduler-restart)
    after: int             # "compile" timing: inject once this many compiles have started
    q: float = 0.0         # wrong-q: the share of the worker's compiles that are wrong
    pick: float = 0.0      # cache kinds: which entry (a draw in [0, 1))

    def env(self) -> str:
        return KINDS[self.kind].env.format(q=self.q)

    def row(self) -> dict:
        return asdict(self)


def available(hosts: bool, kinds: Mapping[str, Kind] = KINDS) -> dict[str, Kind]:
    """The kinds this machine can inject: those needing emulated hosts only with HOSTS."""
    return {n: k for n, k in kinds.items() if hosts or not k.hosts}


def draw(seed: int, n: int, workers: int, q: float, kinds: Mapping[str, Kind],
         max_after: int = 6) -> list[Fault]:
    """N faults drawn from SEED: kind by weight, project, target worker, the compile
    count after which a "compile" fault fires, and the cache entry a cache fault alters."""
    rng = random.Random(seed)
    names = sorted(kinds)
    weights = [kinds[k].weight for k in names]
    out = []
    for i in range(n):
        kind = rng.choices(names, weights)[0]
        out.append(Fault(i, kind, rng.choice(kinds[kind].projects), rng.randrange(workers),
                         rng.randrange(max_after), q if kind == "wrong-q" else 0.0,
                         rng.random()))
    return out


# ------------------------------------------------------------------ outcomes

INJECTED_OUTCOMES = ("survived", "caught", "failed", "hang", "wrong-binary", "wrong-published")
OUTCOMES = (*INJECTED_OUTCOMES, "not-injected")


@dataclass(frozen=True)
class Observation:
    """What one build under a fault showed: whether the fault hit, how the build ended,
    and what it left, against the oracle."""

    injected: bool          # the fault demonstrably hit (see the test module, per kind)
    exit_code: int | None   # None: killed at the campaign's per-build timeout
    identical: bool | None  # the binary's sha256 equals the oracle's (None: no binary)
    caught_symbols: tuple[str, ...] = ()  # "package symbol" of each verification mismatch
    published_wrong: int = 0  # cluster-tier entries whose output differs from the oracle's


def classify(o: Observation) -> str:
    """One outcome per injected fault. A wrong output anywhere outranks everything; a
    build that failed is "caught" only when verification named the package and symbol."""
    if not o.injected:
        return "not-injected"
    if o.exit_code == 0 and o.identical is False:
        return "wrong-binary"
    if o.published_wrong:
        return "wrong-published"
    if o.exit_code is None:
        return "hang"
    if o.exit_code == 0:
        return "survived" if o.identical else "failed"
    return "caught" if o.caught_symbols else "failed"


def tally(rows: Iterable[Mapping]) -> dict[str, dict[str, int]]:
    """Outcome counts by kind (and "all"), from rows with "kind" and "outcome"."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        for key in (r["kind"], "all"):
            counts = out.setdefault(key, {o: 0 for o in OUTCOMES})
            counts[r["outcome"]] += 1
    for counts in out.values():
        counts["injected"] = sum(counts[o] for o in INJECTED_OUTCOMES)
        counts["wrong"] = counts["wrong-binary"] + counts["wrong-published"]
    return out


def catch_rate(builds: Sequence[Mapping], q: float) -> dict[str, float | int]:
    """The intermittent worker's measured catch rate against the formula's. Over the builds
    in which it ran compiles ("armed": each of them wrong with probability q): the share in
    which verification caught it, and the mean over those builds of 1 - (1 - q)^c, c the
    checks the build made of that worker's compiles (fgo.head.checks.catch_probability)."""
    armed = [b for b in builds if b["armed"]]
    if not armed:
        return {"builds": 0}
    caught = sum(1 for b in armed if b["outcome"] == "caught")
    predicted = sum(checks.catch_probability(q, b["checks"]) for b in armed) / len(armed)
    return {"builds": len(armed), "caught": caught, "measured": round(caught / len(armed), 4),
            "predicted": round(predicted, 4),
            "mean_checks": round(sum(b["checks"] for b in armed) / len(armed), 3),
            "with_wrong_compile": sum(1 for b in armed if b["injected"])}
