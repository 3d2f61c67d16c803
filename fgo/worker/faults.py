"""Fault injection for the reliability tests (tests/faults): the one boundary.

Production code paths call `damage(point, data)` where a fault may be injected and use
what it returns; without the FGO_FAULT environment variable (always, outside those tests)
it returns DATA unchanged. A test sets FGO_FAULT in a worker's environment to one of:

- ``corrupt-transfer``: every blob the worker receives (POINT "transfer") has its first
  byte flipped, so the store must refuse it (status corrupt: the compile runs locally);
- ``corrupt-shard``: every shard result the worker produces (POINT "shard") has its
  middle byte flipped, so the leader's merge must refuse it;
- ``truncate-shard``: every shard result is cut to half its length.
"""

from __future__ import annotations

import os

FAULT_ENV = "FGO_FAULT"
POINTS = ("transfer", "shard")


def damage(point: str, data: bytes) -> bytes:
    """DATA as the fault injected at POINT ("transfer" or "shard") leaves it."""
    fault = os.environ.get(FAULT_ENV)
    if not fault or not data:
        return data
    if point == "transfer" and fault == "corrupt-transfer":
        return bytes([data[0] ^ 0xFF]) + data[1:]
    if point == "shard" and fault == "corrupt-shard":
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    if point == "shard" and fault == "truncate-shard":
        return data[: len(data) // 2]
    return data
