"""A compile's sandbox: its inputs laid out from the store at their original absolute paths
under a directory of its own, its outputs read back. Used by the worker's executor and its
split roles, and by the head's verification when it recompiles from its own store.

Sandboxes are reused: a compile leases one, and when it ends only the files it placed or
wrote are removed, its directories kept for the next (making and removing a fresh tree for
every compile was most of a worker's own CPU per compile: makedirs of each input's
directory, then an rmtree of them all). Not go build's work directories: every compile
names a new one ($WORK/b042, under a $WORK of its build's own), so a compile writes its
outputs into the sandbox's one outputs directory, and the directories of inputs laid out
under its $WORK (cgo's generated sources) go when it ends; kept, they were a directory or
two more on disk for every compile a worker ever ran.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from fgo import compilecall
from fgo.blobs import Store
from fgo.compilecall import CompileCall
from fgo.fileio import OwnDir, sha256
from fgo.wire import OutputChunk
from fgo.paths import cache_dir


class BadTask(Exception):
    """A task that would write outside its sandbox or is otherwise malformed."""


def check_paths(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isabs(path) or os.path.normpath(path) != path or "/../" in path + "/":
            raise BadTask(f"path {path!r} is not a clean absolute path")
        if path.startswith("/.fgo-"):  # the sandbox's own files (a link placed there
            raise BadTask(f"path {path!r} is the sandbox's own")  # would be written through)


_free: list[str] = []              # sandboxes not leased now
_free_lock = threading.Lock()
_placed: dict[str, list[str]] = {}  # sandbox -> the files placed in it
# A sandbox's own directories (_empty keeps them): its configs, written over by every
# compile, and its outputs.
CONFIGS = "/.fgo-cfg"
OUTPUTS = "/.fgo-out"
CONFIG_FLAGS = {"importcfg", "embedcfg"}


# This process's sandboxes' directory (those of processes that are gone are removed).
sandboxes = OwnDir(lambda: cache_dir() / "sandbox")


@contextlib.contextmanager
def lease(call: CompileCall) -> Iterator[str]:
    """A sandbox for CALL, emptied of what CALL placed and wrote when the block ends."""
    with _free_lock:
        box = _free.pop() if _free else None
    if box is None or not os.path.isdir(box):
        box = tempfile.mkdtemp(dir=sandboxes(), prefix="t")
        os.mkdir(box + CONFIGS)
        os.mkdir(box + OUTPUTS)
    _placed[box] = []
    try:
        yield box
    finally:
        _empty(box, call)
        with _free_lock:
            _free.append(box)


def _empty(box: str, call: CompileCall) -> None:
    """Remove the files CALL's compile placed and wrote in BOX (the directories of its
    sources stay, its $WORK's go; its configs stay, to be written over by the next)."""
    placed = _placed.pop(box, [])
    for path in [*placed, *output_paths(box, call).values()]:
        _unlink(path)
    _remove_work_dirs(box, call, placed)
    with os.scandir(box) as entries:  # what a split's processes write beside the tree
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def output_paths(box: str, call: CompileCall) -> dict[str, str]:
    """Where CALL's outputs are written in BOX (output -> file): its outputs directory, not
    go's $WORK/bNNN (the compiler records no output's path: the bytes are the same)."""
    return {out: f"{box}{OUTPUTS}/{i}-{os.path.basename(out)}"
            for i, out in enumerate(call.outputs)}


def work_roots(call: CompileCall) -> set[str]:
    """go build's work directories CALL names: each output's $WORK (/tmp/go-build1/b042/
    _pkg_.a -> /tmp/go-build1), which no other build shares."""
    roots = {os.path.dirname(os.path.dirname(out)) for out in call.outputs}
    return roots - {"", "/"}


def _remove_work_dirs(box: str, call: CompileCall, placed: list[str]) -> None:
    """The directories inputs PLACED under CALL's $WORK were laid out in, removed once empty,
    deepest first, $WORK's own included."""
    roots = [box + root for root in work_roots(call)]
    dirs: set[str] = set()
    for path in placed:
        for root in roots:
            if path.startswith(root + "/"):
                d = os.path.dirname(path)
                while len(d) >= len(root):
                    dirs.add(d)
                    d = os.path.dirname(d)
    for d in sorted(dirs, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:  # not empty: another of its files was not placed by this compile
            pass


def materialize(store: Store, inputs: dict[str, str], call: CompileCall, sandbox: str,
                head_goroot: str, own: Mapping[str, str] | None = None) -> list[str]:
    """Lay INPUTS (path -> sha256) out under SANDBOX, from the store or, for those in OWN
    (path -> file), from that file (this worker's GOROOT's copy: fgo.worker.goroot); CALL's
    arguments for running there.

    The imports' archives (export data, most of a compile's inputs, each in a directory of
    its own) are not laid out: the importcfg names their blobs in the store, where the
    compiler reads them in place. Sources stay at their paths under the sandbox: the
    compiler records their names, and resolves relative //line names against them."""
    made: set[str] = set()
    own = own or {}
    archives = set(call.archives)
    placed = _placed.setdefault(sandbox, [])
    configs = {call.importcfg, call.embedcfg}
    for path, sha in inputs.items():
        if path not in archives and path not in configs:
            _place(own.get(path) or store.path(sha), sandbox + path, made)
            placed.append(sandbox + path)
    # configs name absolute paths: rewrite them to point into the sandbox, or the store
    configs_at = {}
    if call.importcfg:
        text = Path(store.path(inputs[call.importcfg])).read_text()
        in_store = {a: store.path(inputs[a]) for a in archives if a in inputs}
        configs_at[sandbox + call.importcfg] = _write_config(
            sandbox, "importcfg", compilecall.sandbox_importcfg(text, sandbox, in_store).encode())
    if call.embedcfg:
        data = Path(store.path(inputs[call.embedcfg])).read_bytes()
        configs_at[sandbox + call.embedcfg] = _write_config(
            sandbox, "embedcfg", compilecall.sandbox_embedcfg(data, sandbox))
    os.makedirs(sandbox + call.cwd, exist_ok=True)
    outputs = {sandbox + out: path for out, path in output_paths(sandbox, call).items()}
    args = compilecall.sandbox_args(call, sandbox, head_goroot)
    args = compilecall.with_outputs(args, sandbox + call.cwd, configs_at, CONFIG_FLAGS)
    return compilecall.with_outputs(args, sandbox + call.cwd, outputs)


def _place(source: str, dest: str, made: set[str]) -> None:
    """Link SOURCE (a blob in the store, or a file of this worker's GOROOT) to DEST; MADE:
    the directories made so far (a compile has ~100 inputs in a few directories, and
    makedirs stats every component of every path)."""
    parent = os.path.dirname(dest)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
    try:
        os.link(source, dest)
    except FileExistsError:  # left by a compile that was killed: replace it
        os.unlink(dest)
        os.link(source, dest)
    except OSError:  # another filesystem: copy
        shutil.copyfile(source, dest)


def _write_config(box: str, kind: str, data: bytes) -> str:
    """DATA as BOX's config KIND, written over the last compile's (a file created costs more
    than one written over: on a disk without a journal, ext4 looks past every recently
    deleted inode for a free one: by hand here, 0.3-0.9 ms of kernel time a file while a
    build runs); its path. Not at go's path under $WORK/bNNN: a directory for each compile."""
    path = f"{box}{CONFIGS}/{kind}"
    write_over(path, data)
    return path


def write_over(path: str, data: bytes) -> None:
    """DATA in the file at PATH (made if missing), written over its old bytes and cut to
    DATA's length after: never truncated to nothing first. On ext4, a file truncated to
    zero and written again is flushed to disk when it is closed (its auto_da_alloc
    heuristic, for programs that replace a file in place): by hand here 0.10 ms of CPU
    and 0.15-0.20 ms of wall a 20 KB config that way, 0.013 ms written over."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


CHUNK_BYTES = 4 << 20  # one OutputChunk: 30 ms at 1 Gb/s, a bounded buffer on both sides


def read_outputs(call: CompileCall, sandbox: str,
                 skip: Mapping[str, int] | None = None) -> dict[str, bytes]:
    return {out: Path(path).read_bytes() for out, path in output_paths(sandbox, call).items()
            if os.path.exists(path) and out not in (skip or {})}


def stream_outputs(call: CompileCall, sandbox: str, above: int,
                   send: Callable[[OutputChunk], None]) -> tuple[dict[str, int], str | None]:
    """The outputs larger than ABOVE bytes to SEND, CHUNK_BYTES at a time: path -> size,
    and the -o output's sha256 if it is one of them (hashed as it is read)."""
    streamed: dict[str, int] = {}
    digest = None
    for i, (out, path) in enumerate(output_paths(sandbox, call).items()):
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if size <= above:
            continue
        h = hashlib.sha256()
        with open(path, "rb") as f:
            offset = 0
            while chunk := f.read(CHUNK_BYTES):
                h.update(chunk)
                send(OutputChunk(out, offset, chunk))
                offset += len(chunk)
        streamed[out] = offset
        if i == 0:
            digest = h.hexdigest()
    return streamed, digest


def output_sha256(call: CompileCall, outputs: dict[str, bytes]) -> str | None:
    """The -o output's hash, for the report (computed here, not on the busy head node)."""
    data = outputs.get(call.outputs[0]) if call.outputs else None
    return sha256(data) if data is not None else None


def staged_names(outputs: list[str]) -> dict[str, str]:
    """Where a worker stages OUTPUTS for the head (`deliver`, or a run in place writing
    them itself): beside their paths, under names of its own, which the head moves into
    place (fgo.head.action checks the `.fgo-` beside each)."""
    tag = uuid.uuid4().hex[:12]
    return {out: f"{out}.fgo-{tag}" for out in outputs}


def staged_outputs(call: CompileCall, staged: dict[str, str],
                   ok: bool) -> tuple[dict[str, tuple[str, int]], str | None]:
    """What a run in place wrote (STAGED: output -> its file), as `deliver` answers, and
    the -o output's sha256 (hashed from the file: no copy of it in memory); when the run
    failed (not OK), none: what it left is removed."""
    if not ok:
        for path in staged.values():
            _unlink(path)
        return {}, None
    delivered = {}
    for out, path in staged.items():
        try:
            delivered[out] = (path, os.path.getsize(path))
        except OSError:  # an output this compile did not write
            continue
    digest = None
    if call.outputs and call.outputs[0] in delivered:
        with open(staged[call.outputs[0]], "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    return delivered, digest


def deliver(outputs: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    """Write OUTPUTS beside where go build expects them: path -> (staged file, size). The
    head moves a staged file into place only if it takes this result: a result it gave up
    on (timed out, raced) must never overwrite what go build has since rewritten."""
    delivered = {}
    for path, staged in staged_names(list(outputs)).items():
        with open(staged, "wb") as f:
            f.write(outputs[path])
        delivered[path] = (staged, len(outputs[path]))
    return delivered
