"""The messages between the head node and its workers, typed and versioned.

The head sends a `CompileTask` (a compile, or with `split` set one shard or the leader of
a split compile) as the argument of a Dask task; the worker answers with a
`CompileResult` (a compile or a leader) or a `ShardResult` (a shard, fetched by the
leader straight from the shard's worker). Every message carries `version`; a receiver
takes only messages of its own `PROTOCOL_VERSION` and of the type it expects (`check`),
so that a head and a worker of different fgo releases refuse each other with a message
naming both versions instead of misreading fields.

The task carries the blobs the head believes the worker's store lacks (`blobs`, by
sha256); if the store lacks more, the answer is `Status.MISSING` with the hashes, and the
head resends them once. Any other status but `OK` makes the head compile locally.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 3  # 2: blob_paths and deliver (a worker on the head's host); 3: early export


class Status(enum.StrEnum):
    """How a task ended, as both sides name it (the value is what reports show)."""

    OK = "ok"                          # ran; for a compile see `exit` (a compile error is ok)
    MISSING = "missing"                # the store lacks `missing`: resend them
    REFUSED = "refused"                # another toolchain or patch series: never use again
    CORRUPT = "corrupt"                # a blob did not match its hash on arrival
    STORE_ERROR = "store-error"        # the worker's store cannot take the blobs (full disk)
    SHARD_FAILED = "shard-failed"      # a shard's compile failed, or the leader lost one
    MERGE_REFUSED = "merge-refused"    # the leader's patched compiler would not merge
    PROTOCOL = "protocol-mismatch"     # a message of another protocol version or type


@dataclass(frozen=True)
class SplitRole:
    """A task's part in a split compile: shard K of N (K >= 1), or the leader (K == 0)."""

    k: int
    n: int
    series: str                        # the patched compiler's patch series (must match)
    plan: str                          # the shard plan file's text
    timeout: float                     # the leader's wait for the shards, seconds
    queue: str | None = None           # leader only: the distributed.Queue of shard futures
    # leader only, with pipelining: the Dask event topic its early export data goes to
    # (a leader is a Dask task, not the compile RPC that carries an ExportReady)
    export_topic: str | None = None

    @property
    def leader(self) -> bool:
        return self.k == 0


@dataclass(frozen=True)
class CompileTask:
    """One compile to run in a sandbox: inputs by path -> sha256, blobs riding along."""

    identity: dict[str, str]           # the head's toolchain.Identity, as a dict
    call: dict[str, Any]               # compileargs.CompileCall, as a dict
    inputs: dict[str, str]             # absolute path -> sha256
    blobs: dict[str, bytes]            # sha256 -> data the head sends with this task
    wait_for: list[str]                # sha256s riding with a concurrent task to this store
    env: dict[str, str]                # go build's environment for the tool
    head_goroot: str                   # the head's GOROOT (for -trimpath)
    split: SplitRole | None = None     # None: a whole compile
    # A worker on the head's own host (it reads the head's host token) takes blobs from the
    # files the head hashed instead of as bytes: sha256 -> (path, cut to export data), and
    # with `deliver` writes a whole compile's outputs to their paths itself.
    blob_paths: dict[str, tuple[str, bool]] = field(default_factory=dict)
    deliver: bool = False
    # Pipelining (fgo.build.speculation): run the patched compiler with -fgoexport and send
    # an `ExportReady` as soon as the package's export data is written, before the result;
    # a speculative compile runs below the worker's real ones (niced, its own threads).
    early_export: bool = False
    speculative: bool = False
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class ExportReady:
    """A compile's export data, sent while its backend still runs (task.early_export): an
    archive holding only `__.PKGDEF`, byte-identical to the final archive's start."""

    data: bytes
    at: float                          # time.time() on the worker when it was written
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class CompileResult:
    """The answer to a compile or leader task. Anything but OK carries `reason` (or
    `missing`); OK carries the tool's exit status, output and the outputs' bytes."""

    status: Status
    worker: str                        # the worker's address, or "local"
    reason: str = ""
    missing: list[str] = field(default_factory=list)
    exit: int = 0
    output: bytes = b""                # the tool's stdout+stderr, sandbox paths removed
    outputs: dict[str, bytes] = field(default_factory=dict)  # path -> bytes (call.outputs)
    # with task.deliver: path -> (the output staged beside it, size), for the head to move
    delivered: dict[str, tuple[str, int]] = field(default_factory=dict)
    output_sha256: str | None = None   # of the -o output, hashed on the worker
    started: float = 0.0               # time.time() of: the task's start,
    tool_start: float = 0.0            # the tool's start,
    tool_done: float = 0.0             # the tool's end,
    returned: float = 0.0              # the task's end
    # a leader's extras
    stats: dict[str, Any] = field(default_factory=dict)    # the patched compiler's timings
    shards: dict[str, Any] = field(default_factory=dict)   # per fetched shard: worker, stats
    shard_bytes: int = 0
    version: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True)
class ShardResult:
    """The answer to a shard task (kept in its worker's memory until the leader fetches it)."""

    status: Status
    worker: str
    reason: str = ""
    result: bytes = b""                # the shard's result file
    stats: dict[str, Any] = field(default_factory=dict)
    tool_start: float = 0.0
    tool_done: float = 0.0
    version: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


def mismatch(message: Any, expected: type) -> str | None:
    """Why MESSAGE is not a current-version EXPECTED, or None if it is one."""
    name = expected.__name__
    if not isinstance(message, expected):
        version = getattr(message, "version", None)
        if isinstance(message, dict):
            version = message.get("version")
        got = type(message).__name__
        return (f"expected a {name} of protocol version {PROTOCOL_VERSION}, "
                f"got a {got} of protocol version {version if version is not None else 'none'}")
    if message.version != PROTOCOL_VERSION:
        return (f"got a {name} of protocol version {message.version}, "
                f"this side speaks protocol version {PROTOCOL_VERSION}")
    return None


def refuse_task(message: Any, worker: str) -> CompileResult | None:
    """The worker's answer to a task that is not a current CompileTask, or None: go ahead."""
    why = mismatch(message, CompileTask)
    return None if why is None else CompileResult(Status.PROTOCOL, worker, reason=why)
