"""A compile's sandbox: its inputs laid out from the store at their original absolute paths
under a fresh directory, its outputs read back, the directory removed off the critical
path. Used by the worker's executor and its split roles, and by the head's verification
when it recompiles from its own store.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from fgo import compilecall
from fgo.blobs import Store
from fgo.compilecall import CompileCall
from fgo.fileio import sha256
from fgo.paths import cache_dir


class BadTask(Exception):
    """A task that would write outside its sandbox or is otherwise malformed."""


def check_paths(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isabs(path) or os.path.normpath(path) != path or "/../" in path + "/":
            raise BadTask(f"path {path!r} is not a clean absolute path")


def make() -> str:
    """A new sandbox directory."""
    root = cache_dir() / "sandbox"
    root.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(dir=root, prefix="t")


def materialize(store: Store, inputs: dict[str, str], call: CompileCall, sandbox: str,
                head_goroot: str) -> list[str]:
    """Lay INPUTS (path -> sha256) out under SANDBOX; CALL's arguments for running there."""
    made: set[str] = set()
    for path, sha in inputs.items():
        _place(store, sha, sandbox + path, made)
    # configs name absolute paths: rewrite them to point into the sandbox
    if call.importcfg:
        text = store.path(inputs[call.importcfg]).read_text()
        _rewrite(sandbox + call.importcfg, compilecall.sandbox_importcfg(text, sandbox).encode())
    if call.embedcfg:
        data = store.path(inputs[call.embedcfg]).read_bytes()
        _rewrite(sandbox + call.embedcfg, compilecall.sandbox_embedcfg(data, sandbox))
    for out in call.outputs:
        os.makedirs(os.path.dirname(sandbox + out), exist_ok=True)
    os.makedirs(sandbox + call.cwd, exist_ok=True)
    return compilecall.sandbox_args(call, sandbox, head_goroot)


def _place(store: Store, sha: str, dest: str, made: set[str]) -> None:
    """Link blob SHA to DEST; MADE: the directories made so far (a compile has ~100 inputs
    in a few directories, and makedirs stats every component of every path)."""
    parent = os.path.dirname(dest)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
    try:
        os.link(store.path(sha), dest)
    except OSError:  # another filesystem: copy
        shutil.copyfile(store.path(sha), dest)


def _rewrite(path: str, data: bytes) -> None:
    """Replace a placed (hard-linked) file without touching the store's copy."""
    os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)


def read_outputs(call: CompileCall, sandbox: str) -> dict[str, bytes]:
    return {out: Path(sandbox + out).read_bytes() for out in call.outputs
            if os.path.exists(sandbox + out)}


def output_sha256(call: CompileCall, outputs: dict[str, bytes]) -> str | None:
    """The -o output's hash, for the report (computed here, not on the busy head node)."""
    data = outputs.get(call.outputs[0]) if call.outputs else None
    return sha256(data) if data is not None else None


def deliver(outputs: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    """Write OUTPUTS beside where go build expects them: path -> (staged file, size). The
    head moves a staged file into place only if it takes this result: a result it gave up
    on (timed out, raced) must never overwrite what go build has since rewritten."""
    delivered = {}
    for path, data in outputs.items():
        staged = f"{path}.fgo-{uuid.uuid4().hex[:12]}"
        with open(staged, "wb") as f:
            f.write(data)
        delivered[path] = (staged, len(data))
    return delivered


_cleanup: queue.SimpleQueue[str] | None = None
_cleanup_lock = threading.Lock()


def remove_later(sandbox: str) -> None:
    """Delete a finished sandbox off the task's critical path (one cleaner thread)."""
    global _cleanup
    with _cleanup_lock:
        if _cleanup is None:
            _cleanup = queue.SimpleQueue()
            threading.Thread(target=_cleaner, args=(_cleanup,), name="fgo-sandbox-cleaner",
                             daemon=True).start()
    _cleanup.put(sandbox)


def _cleaner(q: queue.SimpleQueue[str]) -> None:
    while True:
        shutil.rmtree(q.get(), ignore_errors=True)
