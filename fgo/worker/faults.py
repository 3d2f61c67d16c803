"""Fault injection for the reliability tests (tests/faults): the one boundary.

Production code paths call `damage(point, data)` where a fault may be injected and use
what it returns; without the FGO_FAULT environment variable (always, outside those tests)
it returns DATA unchanged. A test sets FGO_FAULT in a worker's environment to one of:

- ``corrupt-transfer``: every blob the worker receives (POINT "transfer") has its first
  byte flipped, so the store must refuse it (status corrupt: the compile runs locally);
- ``corrupt-shard``: every shard result the worker produces (POINT "shard") has its
  middle byte flipped, so the leader's merge must refuse it;
- ``truncate-shard``: every shard result is cut to half its length;
- ``wrong-archive``: every whole compile on the worker runs with ``-N -l`` (no
  optimization, no inlining): a well-formed archive that is not the one a stock
  compile produces, which only verification against a local compile can catch;
- ``wrong:Q``: the same, on a share Q of the worker's compiles only (an intermittent fault:
  the worker's first check may well pass);
- ``wrong-shard``: every shard process runs with ``GOCOMPILEDEBUG=ssa/dse/off`` (dead
  store elimination off): a well-formed result whose digests are valid but whose
  functions' instructions differ from a stock compile's. The split's fingerprint covers
  the compiler's effective settings (patch 0017), so the leader's merge refuses it
  (``merge-refused: ... was compiled with other settings: shard debug ssa/dse/off;
  leader none``) and the package compiles normally, verification or not;
- ``lose-input``: every whole compile on the worker has one of its Go sources removed
  from its sandbox before the compiler starts (an input lost on the host: CI met it once),
  so the compiler fails there ("open ...: no such file or directory") on a good
  compile: the head must not take that for the user's error;
- ``slow:SECONDS``: every whole compile on the worker waits SECONDS before it starts (a
  slow or overloaded host): the head's racing of the compiles go build waits on must
  hide it;
- ``old-protocol``: the worker answers every message as a worker of the previous protocol
  version would label it, so the head must refuse it with a clean protocol mismatch;
- ``edit-after-plan:FILE`` (the head): once go's plan (`go build -n`) for pipelining has
  been read, FILE is replaced by FILE.next (a source edited, or added, after the
  prediction): speculations from the stale plan must be discarded. The build waits for
  the plan under this fault, so that go build itself sees the edited tree.

With FGO_FAULT_LOG set as well, every time the fault actually changes something (a
compile run wrong, a blob or shard damaged) a line "<fault> <point> <task>" is appended
to that file: the fault campaign (experiments/test_12_faults.py) counts a fault as
injected only when it hit.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

FAULT_ENV = "FGO_FAULT"
LOG_ENV = "FGO_FAULT_LOG"
POINTS = ("transfer", "shard")


def _fault() -> str:
    return os.environ.get(FAULT_ENV, "")


def edits_after_plan() -> bool:
    return _fault().startswith("edit-after-plan:")


def after_plan() -> None:
    """The head has read go's plan: the `edit-after-plan` fault edits its file now."""
    if edits_after_plan():
        path = _fault().split(":", 1)[1]
        os.replace(path + ".next", path)


def compile_args(args: list[str], task_id: str = "") -> list[str]:
    """A whole compile's ARGS as the fault leaves them (flags go before the files):
    ``wrong-archive`` on every compile, ``wrong:Q`` on a share Q of them (drawn from the
    task's id, so that a test can tell which)."""
    fault = _fault()
    if fault == "wrong-archive" or fault.startswith("wrong:") and wrong_draw(task_id) < _share(fault):
        _hit("compile", task_id)
        return ["-N", "-l", *args]
    return args


def lose_input(box: str, inputs: list[str], task_id: str = "") -> None:
    """``lose-input``: the first Go source of INPUTS (paths as the compile names them)
    removed from the sandbox BOX."""
    if _fault() != "lose-input":
        return
    source = next((p for p in inputs if p.endswith(".go")), None)
    if source is not None:
        _hit("compile", task_id)
        os.unlink(box + source)


def _hit(point: str, what: str = "") -> None:
    """Record that the fault changed something (FGO_FAULT_LOG): what a campaign counts."""
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a") as f:
            f.write(f"{_fault()} {point} {what}\n")


def wrong_draw(task_id: str) -> float:
    """The number in [0, 1) that decides whether ``wrong:Q`` hits the task TASK_ID."""
    return int(hashlib.sha256(f"wrong {task_id}".encode()).hexdigest()[:8], 16) / 2 ** 32


def _share(fault: str) -> float:
    try:
        return float(fault.split(":", 1)[1])
    except ValueError:
        return 0.0


def shard_env(env: dict[str, str]) -> dict[str, str]:
    """A shard process's environment as the fault leaves it."""
    return {**env, "GOCOMPILEDEBUG": "ssa/dse/off"} if _fault() == "wrong-shard" else env


def delay() -> float:
    """Seconds a whole compile waits first (``slow:SECONDS``), else 0."""
    fault = _fault()
    if fault.startswith("slow:"):
        try:
            return float(fault.split(":", 1)[1])
        except ValueError:
            return 0.0
    return 0.0


def wire_version(data: Any) -> Any:
    """A message's plain data as the worker sends it (``old-protocol``: one version back)."""
    if _fault() == "old-protocol" and isinstance(data, dict) and "version" in data:
        return {**data, "version": data["version"] - 1}
    return data


def damage(point: str, data: bytes) -> bytes:
    """DATA as the fault injected at POINT ("transfer" or "shard") leaves it."""
    fault = os.environ.get(FAULT_ENV)
    if not fault or not data:
        return data
    if point == "transfer" and fault == "corrupt-transfer":
        _hit(point)
        return bytes([data[0] ^ 0xFF]) + data[1:]
    if point == "shard" and fault == "corrupt-shard":
        _hit(point)
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    if point == "shard" and fault == "truncate-shard":
        _hit(point)
        return data[: len(data) // 2]
    return data
