"""Split decisions: pure functions over plain data (no processes, no I/O).

The time model of a split compile with K shards (README.md, "Splitting a large package"): every
process repeats the frontend F, then compiles its share of the backend B; the K-1 other shards
ship their results (transfer) and the leader injects them (merge) before it writes the
object (D):

    split(K)  = F + B/(K s) + D + fixed + (K-1) * (transfer_per_shard + merge_per_shard)
    whole     = F + B/s + D                        (the stock compile, with go's -c)

where s is the backend's speedup from its -c goroutines on one host (Amdahl with the
backend's parallel fraction: ec2's measured 0.66; a 16-core node's -c=16 gives s = 2.6):
every shard gets it on its own host as the whole compile does on one. On one host a split
never pays (its shards share the cores -c already uses): only other hosts add capacity,
so the caller counts free hosts, not workers.

K is chosen to minimise split(K) over 2 <= K <= min(free workers, functions, max_shards).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class CostLike(Protocol):
    """Anything with predicted seconds F, B, D (costmodel.Cost)."""

    @property
    def F(self) -> float: ...
    @property
    def B(self) -> float: ...
    @property
    def D(self) -> float: ...


@dataclass(frozen=True)
class Overheads:
    """What splitting costs on top of the compile itself (seconds)."""

    transfer_per_shard: float = 0.35  # ship inputs to a shard's worker + its result back
    merge_per_shard: float = 0.25     # leader: decode + inject one shard's result (ssa: ~0.24)
    fixed: float = 0.2                # per split package: plan, dispatch, digest check
    backend_speedup: float = 1.0      # the backend's speedup from -c on one host (backend_speedup())
    max_shards: int = 8


@dataclass(frozen=True)
class SplitPolicy:
    """The user's flags: `--split-large[=SECONDS]` and `--shards K|auto`."""

    threshold: float | None = None    # None: automatic (split iff the predicted gain > min_gain)
    shards: int | None = None         # None: auto (argmin of split(K))
    min_gain: float = 0.5             # automatic mode: seconds a split must save

    @property
    def forced(self) -> bool:
        """`--split-large=0`: every package with two or more functions is split (testing)."""
        return self.threshold is not None and self.threshold <= 0


@dataclass
class SplitPlan:
    """The decision for one package."""

    k: int                            # 1 = compile whole
    reason: str                       # why (for the report)
    predicted_whole: float            # seconds, unsplit
    predicted_split: float            # seconds with k shards (== predicted_whole if k == 1)
    shards: list[list[int]] = field(default_factory=list)   # unit indices per shard, leader 0
    shard_loads: list[float] = field(default_factory=list)  # predicted backend s per shard

    @property
    def split(self) -> bool:
        return self.k >= 2

    def symbols(self, units: Sequence[Any]) -> list[list[str]]:
        """Each shard's functions by compiler-style name (FuncUnit.symbol; UNITS = scan.units)."""
        return [[units[i].symbol for i in sh] for sh in self.shards]

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "reason": self.reason, "predicted_whole": self.predicted_whole,
                "predicted_split": self.predicted_split, "shards": self.shards,
                "shard_loads": self.shard_loads}


# The backend's parallel fraction under -c: measured on aws-sdk-go's ec2 with -c=2 against
# -c=1, the second core free (experiments/results/aws_c2.json: 0.66; sagemaker 0.76, ssa
# 0.72, net/http 0.69, runtime 0.57).
BACKEND_PARALLEL_FRACTION = 0.66


def backend_speedup(cores: int, fraction: float = BACKEND_PARALLEL_FRACTION) -> float:
    """The backend's speedup from go's -c with CORES goroutines on one host (Amdahl)."""
    c = max(1, cores)
    return 1.0 / ((1.0 - fraction) + fraction / c)


def whole_time(cost: CostLike, o: Overheads = Overheads()) -> float:
    return cost.F + cost.B / o.backend_speedup + cost.D


def split_time(cost: CostLike, k: int, o: Overheads = Overheads()) -> float:
    """Predicted wall time of the package compiled as K shards (K=1: whole)."""
    if k <= 1:
        return whole_time(cost, o)
    return (cost.F + cost.B / (k * o.backend_speedup) + cost.D + o.fixed
            + (k - 1) * (o.transfer_per_shard + o.merge_per_shard))


def _no_other_host(free_workers: int) -> str:
    return f"{free_workers} free host(s): go's -c already uses its cores"


def choose_shards(cost: CostLike, n_funcs: int, free_workers: int,
                  policy: SplitPolicy = SplitPolicy(),
                  o: Overheads = Overheads()) -> tuple[int, str]:
    """(K, reason): K = 1 means compile whole.

    free_workers counts the worker the leader would run on. `threshold == 0` is the testing
    mode: every package with >= 2 functions is split, into at least 2 shards even if fewer
    workers are free (the shards then queue).
    """
    if n_funcs < 2:
        return 1, "fewer than 2 functions"
    whole = whole_time(cost, o)
    forced = policy.forced
    cap = min(n_funcs, o.max_shards if policy.shards is None else max(policy.shards, 1))
    cap = min(cap, max(free_workers, 2 if forced else 1))
    if policy.threshold is not None and not forced and whole <= policy.threshold:
        return 1, f"predicted {whole:.2f}s <= threshold {policy.threshold:g}s"
    if cap < 2:
        return 1, _no_other_host(free_workers)
    if policy.shards is not None:
        k = cap
    else:
        k = min(range(2, cap + 1), key=lambda j: (split_time(cost, j, o), j))
    gain = whole - split_time(cost, k, o)
    if policy.threshold is None and gain <= policy.min_gain:
        return 1, f"predicted gain {gain:.2f}s <= {policy.min_gain:g}s"
    why = "forced (threshold 0)" if forced else (
        f"predicted {whole:.2f}s > threshold {policy.threshold:g}s" if policy.threshold
        else f"predicted gain {gain:.2f}s")
    return k, why


def decided_unscanned(free_workers: int, funcs_at_least: int,
                      policy: SplitPolicy = SplitPolicy()) -> tuple[int, str] | None:
    """(K, reason) when the package's scan cannot change `choose_shards`'s answer, else
    None. The scan (lark, on the head's core: 0.9 s for service/ec2's 6.8 MB) is then not
    made: with no other host free, nothing is split unless forced; a forced split whose K
    is given takes that K (at most the free workers, at least 2) once the package surely
    holds 4 functions a shard (FUNCS_AT_LEAST, a cheap lower bound), and the compiler
    deals them (by IR size, before the walk) without a plan."""
    forced = policy.forced
    if not forced and free_workers < 2:
        return 1, _no_other_host(free_workers)
    if forced and policy.shards is not None:
        k = min(max(policy.shards, 1), max(free_workers, 2))
        if k >= 2 and funcs_at_least >= 4 * k:
            return k, "forced (threshold 0), K given: not scanned"
    return None


def partition(weights: Sequence[float], k: int) -> list[list[int]]:
    """Balanced partition of items (by index) into K shards: longest first onto the least
    loaded shard (LPT, within 4/3 of optimal). Deterministic: ties go to the lower index.
    Shard 0 (the leader's) gets the smallest load when loads differ, since it also merges.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    heap = [(0.0, s) for s in range(k)]
    shards: list[list[int]] = [[] for _ in range(k)]
    for i in order:
        load, s = heapq.heappop(heap)
        shards[s].append(i)
        heapq.heappush(heap, (load + weights[i], s))
    loads = [sum(weights[i] for i in sh) for sh in shards]
    # leader = lightest shard, then the rest by index of their first (heaviest) item
    ranked = sorted(range(k), key=lambda s: (loads[s], s))
    leader = ranked[0]
    rest = [s for s in range(k) if s != leader]
    return [sorted(shards[s]) for s in [leader, *rest]]


def plan_split(cost: CostLike, unit_weights: Sequence[float], free_workers: int,
               policy: SplitPolicy = SplitPolicy(), o: Overheads = Overheads()) -> SplitPlan:
    """Decide K for one package and partition its function units (by their weights, e.g.
    costmodel.unit_backend_seconds of a scan's units, in scan order; units of weight 0, e.g.
    without a body, are not counted as functions) into K shards."""
    whole = whole_time(cost, o)
    n_funcs = sum(1 for w in unit_weights if w > 0)
    k, why = choose_shards(cost, n_funcs, free_workers, policy, o)
    if k < 2:
        return SplitPlan(1, why, whole, whole)
    shards = partition(unit_weights, k)
    total = float(sum(unit_weights)) or 1.0
    loads = [cost.B * sum(unit_weights[i] for i in sh) / total for sh in shards]
    predicted = cost.F + max(loads) / o.backend_speedup + cost.D + o.fixed + (k - 1) * (
        o.transfer_per_shard + o.merge_per_shard)
    return SplitPlan(k, why, whole, predicted, shards, loads)
