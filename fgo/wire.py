"""Every message between the head node, its shim and its workers: typed, versioned, plain.

Each message is a frozen dataclass here; `encode` turns one into plain data (dicts, lists,
str, int, float, bool, bytes, None) and `decode` turns plain data back into the type its
receiver expects. Nothing crosses the wire pickled, so a receiver of another fgo release
reads the `type` and `version` of what it got before anything else and answers with a
clean protocol mismatch naming both versions, instead of failing to unpickle a class that
moved. Dask's comms carry the plain data (msgpack, bytes as bin); the shim speaks JSON.

Directions (sccache's src/dist has the same shape: a struct per message, the transport an
adapter):

  shim   -> head    ShimRequest             head -> shim    ShimReply
  head   -> worker  Hello                   worker -> head  HelloReply
  head   -> worker  CompileTask             worker -> head  ExportReady*, OutputChunk*,
                                                            CompileResult
  head   -> worker  CompileTask(split k>0)  worker -> head  ShardDone
  leader -> worker  ShardFetch              worker -> leader ShardResult
  head   -> worker  Cancel, Promote         worker -> head  bool
  head   -> worker  CachePut                worker -> head  int
  head   -> worker  (Client.run) index, get worker -> head CacheIndex, CacheEntry
  head   -> workers (Client.run) CacheRevocation list: every worker keeps a copy

A task carries the blobs the head believes the worker's store lacks (`blobs`, by sha256);
if the store lacks more, the answer is `Status.MISSING` with the hashes, and the head
resends them once. Any other status but `OK` makes the head compile elsewhere.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fgo.compilecall import CompileCall
from fgo.toolchain import Identity

# 4: plain data instead of pickled classes; Hello; shards fetched by RPC; ExportReady from
# leaders; CompilerStats. 5: large outputs streamed in OutputChunks. 6: compiles in place.
PROTOCOL_VERSION = 6

# The handlers fgo installs on every worker (fgo.worker.service), by Dask op name.
OP_HELLO = "fgo_hello"
OP_COMPILE = "fgo_compile"
OP_FETCH = "fgo_shard_fetch"
OP_CANCEL = "fgo_cancel"
OP_PROMOTE = "fgo_promote"
OP_CACHE_PUT = "fgo_cache"
OP_CACHE_ADOPT = "fgo_cache_adopt"
OP_CACHE_STAGE = "fgo_cache_stage"
OP_CACHE_STAGE_PART = "fgo_cache_stage_part"

T = TypeVar("T")


class Status(enum.StrEnum):
    """How a task ended, as both sides name it (the value is what reports show)."""

    OK = "ok"                          # ran; for a compile see `exit` (a compile error is ok)
    MISSING = "missing"                # the store lacks `missing`: resend them
    REFUSED = "refused"                # another toolchain or patch series: never use again
    CORRUPT = "corrupt"                # a blob did not match its hash on arrival
    STORE_ERROR = "store-error"        # the worker's store cannot take the blobs (full disk)
    SHARD_FAILED = "shard-failed"      # a shard's compile failed, or the leader lost one
    MERGE_REFUSED = "merge-refused"    # the leader's patched compiler would not merge
    CANCELLED = "cancelled"            # the head no longer wanted it
    PROTOCOL = "protocol-mismatch"     # a message of another protocol version or type


# ------------------------------------------------------------------ shim <-> head

@dataclass(frozen=True)
class ShimRequest:
    """One tool call go build made through the shim (JSON from fgo/head/shim/shim.go)."""

    argv: list[str]                    # tool path, then its arguments
    cwd: str
    env: dict[str, str]                # the GO* variables (and TOOLEXEC_IMPORTPATH)


@dataclass(frozen=True)
class ShimReply:
    """The head's answer: run the tool here (`local`; with `hold` the shim keeps its
    connection open while the tool runs, so the head knows when a local slot frees), or
    the result of a run elsewhere (combined output, exit status, outputs already written)."""

    local: bool
    hold: bool = False
    exit: int = 0
    output: bytes = b""


# ------------------------------------------------------------------ handshake

@dataclass(frozen=True)
class Hello:
    """The head's first question to each worker of a build."""

    identity: Identity                 # the head's toolchain
    host_token: tuple[str, str] = ("", "")  # (path, text) of a file the head just wrote
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class HelloReply:
    """Who the worker is: its toolchain, its store and what it holds, its threads, and
    whether it reads the head's host token (it then shares the head's files)."""

    fgo_version: str
    identity: Identity
    store_id: str
    hashes: list[str]
    nthreads: int
    cores: int                         # the cores this worker process may run on
    shares_files: bool = False
    patched_series: str = ""           # the patched compiler's series, if built here
    # its compile channel (fgo.cluster.channel): host, port and the secret a head presents;
    # port 0: none (a worker on TLS, or an older fgo): compiles go over Dask's comms
    channel: tuple[str, int, str] = ("", 0, "")
    # it takes Go sources under the head's GOROOT from its own toolchain's GOROOT when they
    # hash the same (CompileTask.from_goroot); False: an older fgo, sent them all
    goroot_sources: bool = False
    version: int = PROTOCOL_VERSION


# ------------------------------------------------------------------ compiles

@dataclass(frozen=True)
class ShardPeer:
    """Where a leader fetches shard K's result: the worker that runs it."""

    k: int
    address: str


@dataclass(frozen=True)
class SplitRole:
    """A task's part in a split compile: shard K of N (K >= 1), or the leader (K == 0)."""

    k: int
    n: int
    series: str                        # the patched compiler's patch series (must match)
    plan: str                          # the shard plan file's text
    timeout: float                     # the leader's wait for the shards, seconds
    split_id: str                      # names this split's shards on their workers
    peers: list[ShardPeer] = field(default_factory=list)  # leader only: shards 1..N-1
    lead_start: int | None = None      # the leader's starting load, per mille (same for all)
    wait_compiler: bool = True         # False: a worker without the patched compiler refuses

    @property
    def leader(self) -> bool:
        return self.k == 0


@dataclass(frozen=True)
class CompileTask:
    """One compile to run in a sandbox: inputs by path -> sha256, blobs riding along."""

    task_id: str                       # names it for Cancel and Promote
    identity: Identity                 # the head's toolchain
    call: CompileCall
    inputs: dict[str, str]             # absolute path -> sha256
    blobs: dict[str, bytes]            # sha256 -> data the head sends with this task
    wait_for: list[str]                # sha256s riding with a concurrent task to this store
    env: dict[str, str]                # go build's environment for the tool
    head_goroot: str                   # the head's GOROOT (for -trimpath)
    split: SplitRole | None = None     # None: a whole compile
    # A worker on the head's own host (it reads the head's host token) takes blobs from the
    # files the head hashed instead of as bytes: sha256 -> (path, cut to export data), and
    # with `deliver` writes a whole compile's outputs beside their paths itself.
    blob_paths: dict[str, tuple[str, bool]] = field(default_factory=dict)
    deliver: bool = False
    # A worker of the head's own embedded cluster (its child process: the same files for
    # certain) compiles from the head's files at their paths, as go build's own compile
    # re-reads what go hashed: no blob is read, hashed and written into its store first.
    in_place: bool = False
    # Pipelining: run the patched compiler with -fgoexport and send an `ExportReady` as
    # soon as the package's export data is written, before the result; a speculative
    # compile runs below the worker's real ones (niced, its own threads).
    early_export: bool = False
    speculative: bool = False
    # A whole compile's outputs larger than this go back as OutputChunks before the answer
    # (0: all inside it): neither side then holds a giant archive (aws-sdk-go's ec2: 64 MB)
    # in memory, let alone its copies in the message.
    stream_above: int = 0
    # Inputs under head_goroot's src/ not sent (sha256s): the worker's own toolchain holds
    # the standard library's sources; it links its own copy of each that hashes the same,
    # and answers MISSING for any other (the head then sends it and sends that worker all).
    from_goroot: list[str] = field(default_factory=list)
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class OutputChunk:
    """Part of a compile's output, sent before its CompileResult (task.stream_above)."""

    path: str                          # the output, as in call.outputs
    offset: int
    data: bytes
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class ExportReady:
    """A compile's export data, sent while its backend still runs (task.early_export): an
    archive holding only `__.PKGDEF`, byte-identical to the final archive's start."""

    data: bytes
    at: float                          # time.time() on the worker when it was written
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class CompilerStats:
    """The patched compiler's own timings and counts (-fgostats), for one process of a split."""

    shard: int = 0
    n: int = 0
    funcs: int = 0
    texts: int = 0
    my_funcs: int = 0
    loop_funcs: int = 0
    frontend_s: float = 0.0
    walk_s: float = 0.0
    backend_s: float = 0.0
    export_s: float = 0.0
    wait_s: float = 0.0
    inject_s: float = 0.0
    later_s: float = 0.0
    total_s: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompilerStats:
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        return cls(**{k: (int(v) if known[k] == "int" else float(v))
                      for k, v in data.items() if k in known and isinstance(v, (int, float))})


@dataclass(frozen=True)
class ShardInfo:
    """What a leader learned of one shard it merged."""

    k: int
    worker: str
    bytes: int
    tool_s: float
    stats: CompilerStats
    result_s: float = 0.0  # from the shard's end to its result on the leader's disk (two
    #                        hosts' clocks)
    tool_start: float = 0.0  # when the shard's compiler started (its host's clock)


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
    streamed: dict[str, int] = field(default_factory=dict)  # path -> size, sent as OutputChunks
    output_sha256: str | None = None   # of the -o output, hashed on the worker
    started: float = 0.0               # time.time() of: the task's start,
    tool_start: float = 0.0            # the tool's start,
    tool_done: float = 0.0             # the tool's end,
    returned: float = 0.0              # the task's end
    # a leader's extras
    stats: CompilerStats | None = None
    shards: list[ShardInfo] = field(default_factory=list)
    shard_bytes: int = 0
    version: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True)
class ShardDone:
    """A shard's answer to the head: how it ended (its result stays on its worker until
    the leader fetches it)."""

    status: Status
    worker: str
    reason: str = ""
    bytes: int = 0
    tool_start: float = 0.0
    tool_done: float = 0.0
    version: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True)
class ShardFetch:
    """A leader asks a shard's worker for its result, waiting up to `timeout`."""

    split_id: str
    k: int
    timeout: float
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class ShardResult:
    """A shard's result file, handed to its leader."""

    status: Status
    worker: str
    reason: str = ""
    result: bytes = b""
    stats: CompilerStats | None = None
    tool_start: float = 0.0
    tool_done: float = 0.0
    version: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True)
class Cancel:
    """Stop the task (or the shards of the split) of this id, if it still runs."""

    task_id: str
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Promote:
    """go build waits for this speculative compile now: let it run as a real one."""

    output: str
    version: int = PROTOCOL_VERSION


# ------------------------------------------------------------------ the cluster cache tier

@dataclass(frozen=True)
class CacheEntry:
    """A go build cache entry as it travels between a head and the worker that keeps it.

    Every field but the body is signed by the publishing head (`signature`: HMAC-SHA256
    with the key heads share, over fgo.cache.trust's canonical encoding with the
    namespace); a worker keeps what it was given and never makes or checks a signature."""

    action: str                        # hex action ID
    output: str                        # hex output ID: sha256 of the body
    body: bytes
    put_time: float
    seconds: float = 0.0               # the compile time it saves, when the publisher knew it
    producer: str = ""                 # who computed it: worker address(es), or "head"
    checked: bool = False              # the publishing build compared that compile with its own
    signature: str = ""                # hex; "" for none (never used by a head)
    size: int = -1                     # the body's size; -1: len(body) (an index has no body)

    @property
    def length(self) -> int:
        return len(self.body) if self.size < 0 else self.size


@dataclass(frozen=True)
class CachePut:
    """A head publishes ENTRIES of namespace NS to the worker that owns them."""

    ns: str
    entries: list[CacheEntry]
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class HeldEntry:
    """An entry whose body the worker holds: RAW, the sha256 of the archive it compiled,
    which go build gave `-buildid BUILD_ID` and cached with WRITTEN_ID written over it
    (fgo.gobuildid); or, BUILD_ID "", a body the head staged there (RAW: its output ID)."""

    entry: CacheEntry                  # signed, no body
    raw: str
    build_id: str
    written_id: str = ""


@dataclass(frozen=True)
class CacheStage:
    """While its build runs, a head sends BODIES (output ID -> body) no worker holds (its
    own compiles') to the worker that will own their entries: held there, not entries
    (fgo.cache.held, fgo.cache.stage)."""

    bodies: dict[str, bytes]
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class CacheStagePart:
    """DATA at OFFSET of a staged body of TOTAL bytes with output ID OUTPUT: a large body goes
    a part at a time (neither side then holds it whole, nor Dask's copies of it)."""

    output: str
    offset: int
    total: int
    data: bytes
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class CacheAdopt:
    """A head publishes entries of namespace NS whose bodies the worker holds (fgo.cache.held):
    no body crosses the network."""

    ns: str
    held: list[HeldEntry]
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class CacheRevocation:
    """A head's word that an entry (ACTION with OUTPUT), or everything PRODUCER computed, is
    wrong and must never be used: signed like an entry; every worker keeps a copy."""

    action: str = ""                   # with OUTPUT: one entry
    output: str = ""
    producer: str = ""                 # or: every entry this worker took part in
    reason: str = ""
    time: float = 0.0
    signature: str = ""


@dataclass(frozen=True)
class CacheIndex:
    """A worker's share of a namespace: its entries without bodies, and the revocations it
    keeps."""

    entries: list[CacheEntry]
    revoked: list[CacheRevocation]


MESSAGES: dict[str, type] = {cls.__name__: cls for cls in (
    ShimRequest, ShimReply, Hello, HelloReply, ShardPeer, SplitRole, CompileTask, ExportReady,
    OutputChunk,
    CompilerStats, ShardInfo, CompileResult, ShardDone, ShardFetch, ShardResult, Cancel,
    Promote, CacheEntry, CachePut, HeldEntry, CacheStage, CacheStagePart, CacheAdopt, CacheRevocation,
    CacheIndex, Identity, CompileCall)}


# ------------------------------------------------------------------ the codec

class ProtocolMismatch(ValueError):
    """A message of another type or protocol version than the receiver expects."""


# Values decoded as they are: most of a task's leaves (paths, hashes, flags). Checked first
# by exact type, so that a leaf costs one set lookup, not a walk of the checks below (a
# 60-input task: 0.17 ms to encode and as much to decode, on the head and on its worker per
# compile; 0.02 and 0.05 ms so). Encoded as they are too: floats and bytes (which decoding
# may convert from an int or a memoryview).
_PLAIN = frozenset({str, int, bool, type(None)})
_AS_IS = _PLAIN | {float, bytes}


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """CLS's fields if it is a dataclass, else None."""
    return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) \
        else None


def encode(message: Any) -> Any:
    """MESSAGE (a dataclass of this module, or plain data holding some) as plain data."""
    cls = type(message)
    if cls in _AS_IS:
        return message
    if cls is dict:
        return {k: encode(v) for k, v in message.items()}
    if cls is list or cls is tuple:
        return [encode(x) for x in message]
    names = _field_names(cls)
    if names is not None:
        out: dict[str, Any] = {"type": cls.__name__}
        for name in names:
            out[name] = encode(getattr(message, name))
        return out
    if isinstance(message, enum.Enum):
        return message.value
    if isinstance(message, (list, tuple)):
        return [encode(x) for x in message]
    if isinstance(message, dict):
        return {k: encode(v) for k, v in message.items()}
    return message


def message_type(data: Any) -> str:
    """The type name plain DATA says it is ("" for none)."""
    return data.get("type", "") if isinstance(data, dict) else ""


def decode(data: Any, expected: type[T]) -> T:
    """Plain DATA as the message type EXPECTED; ProtocolMismatch when it is another type or
    of another protocol version (the reason names both)."""
    name = expected.__name__
    got = message_type(data)
    version = data.get("version") if isinstance(data, dict) else None
    if got != name:
        raise ProtocolMismatch(
            f"expected a {name} of protocol version {PROTOCOL_VERSION}, got "
            f"{'a ' + got if got else 'a ' + type(data).__name__} of protocol version "
            f"{version if version is not None else 'none'}")
    if "version" in _fields(expected) and version != PROTOCOL_VERSION:
        raise ProtocolMismatch(f"got a {name} of protocol version {version}, this side "
                               f"speaks protocol version {PROTOCOL_VERSION}")
    try:
        return typing.cast(T, _build(expected, data))
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolMismatch(f"a malformed {name}: {exc}") from None


def decode_any(data: Any) -> Any:
    """Plain DATA as whichever message of this module it names."""
    cls = MESSAGES.get(message_type(data))
    if cls is None:
        raise ProtocolMismatch(f"not a message of protocol version {PROTOCOL_VERSION}: "
                               f"{message_type(data) or type(data).__name__}")
    return decode(data, cls)


@functools.cache
def _fields(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, data: dict[str, Any]) -> Any:
    convert = _converters(cls)
    return cls(**{k: convert[k](v) for k, v in data.items() if k in convert})


@functools.cache
def _converters(cls: type) -> dict[str, Callable[[Any], Any]]:
    """Each field of the dataclass CLS: how its plain data becomes the annotated type,
    worked out once per class (a compile's result is decoded on the head's core, and a
    task on the worker's, hundreds of times a build)."""
    hints = _fields(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}


def _as_is(value: Any) -> Any:
    return value


@functools.cache
def _converter(hint: Any) -> Callable[[Any], Any]:
    """What makes plain data the annotated type HINT."""
    if hint in _PLAIN:
        return _as_is
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            return _as_is
        inner = _converter(options[0])
        return lambda value: None if value is None else inner(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        def build(value: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"{hint.__name__}: not a mapping")
            return _build(hint, value)
        return build
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if origin is list:
        (item,) = typing.get_args(hint)
        each = _converter(item)
        if each is _as_is:
            return list
        return lambda value: [each(x) for x in value]
    if origin is tuple:
        parts = [_converter(a) for a in typing.get_args(hint)]
        return lambda value: tuple(c(x) for c, x in zip(parts, value))
    if origin is dict:
        _, val = typing.get_args(hint)
        each = _converter(val)
        if each is _as_is:
            return dict
        return lambda value: {k: each(v) for k, v in value.items()}
    if hint is float:
        return lambda value: float(value) if isinstance(value, int) else value
    if hint is bytes:
        return lambda value: bytes(value) if isinstance(value, (bytearray, memoryview)) \
            else value
    return _as_is
