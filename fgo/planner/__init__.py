"""The planner of `fgo build --split-large`.

- `gosource`: a fast lexical pre-scan plus a lark grammar of Go's top-level structure;
  yields the function units of a package (`scan_files`, `scan_package_dir`).
- `costmodel`: predicts a package's frontend F, backend B and object-write D seconds from
  its scan, with coefficients fitted on the stock compiler's `-bench` phase timings.
- `decide`: pure decisions over plain data: split or not, K, the balanced partition of
  function units into shards, critical-path priorities of the package graph.

Names are imported lazily so that `python -m fgo.planner.costmodel` (a toolexec wrapper)
does not pay for lark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .decide import Overheads, SplitPlan, SplitPolicy
    from .gosource import PackageScan

_EXPORTS = {
    "FuncUnit": "gosource", "PackageScan": "gosource", "scan_files": "gosource",
    "scan_package_dir": "gosource", "scan_source": "gosource",
    "Cost": "costmodel", "predict": "costmodel",
    "SplitPlan": "decide", "choose_shards": "decide", "partition": "decide",
    "plan_split": "decide", "critical_path_priority": "critical",
}

__all__ = [
    "Cost", "FuncUnit", "PackageScan", "SplitPlan", "choose_shards", "critical_path_priority",
    "partition", "plan", "plan_split", "predict", "scan_files", "scan_package_dir",
    "scan_source",
]


def plan(scan: PackageScan, free_workers: int, policy: SplitPolicy | None = None,
         overheads: Overheads | None = None) -> SplitPlan:
    """Predict SCAN's cost and decide its split: K and the function units of each shard
    (`plan.shards` holds indices into `scan.units`; shard 0 is the leader's)."""
    from .costmodel import predict, unit_backend_seconds
    from .decide import Overheads, SplitPolicy, plan_split

    return plan_split(predict(scan), unit_backend_seconds(scan.units), free_workers,
                      policy or SplitPolicy(), overheads or Overheads())


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod == "gosource":
        from . import gosource as module
    elif mod == "costmodel":
        from . import costmodel as module  # type: ignore[no-redef]
    elif mod == "decide":
        from . import decide as module  # type: ignore[no-redef]
    else:
        raise AttributeError(name)
    return getattr(module, name)
