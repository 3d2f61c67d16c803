"""The standard library's sources from this worker's own toolchain, not from the head.

A worker runs the same pinned toolchain as the head (the task's identity says so), and a
toolchain is a whole GOROOT, sources included: most of a cold build's inputs (gin: two in
three of the blobs a worker stored) are files it already has. The head leaves them out of
a task (CompileTask.from_goroot, by sha256); the worker links its own copy of each into the
sandbox when that copy hashes the same, and reports any other missing, as a store that
lacks a blob does: the head then sends it. Nothing is trusted by path: a file is used only
under the hash the head computed of its own.

What that saves is not only the transfer: every blob stored is a file created, and on an
ext4 without a journal (this project's test machine) a create scans past every inode
deleted in the last minutes: by perf, three quarters of a worker's kernel time in `open`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping

from fgo import toolchain
from fgo.blobs import Store
from fgo.fileio import file_version, sha256

SRC = "/src/"

_hashes: dict[str, tuple[tuple[int, int, int, int], str]] = {}  # path -> (version, sha256)
_lock = threading.Lock()


@functools.cache
def _own_src() -> str:
    return str(toolchain.goroot()) + SRC


def own_path(head_goroot: str, path: str, own_src: str | None = None) -> str | None:
    """Where this worker's GOROOT (its src/ at OWN_SRC) has the file the head has at PATH
    under HEAD_GOROOT's src/; None for a path elsewhere."""
    prefix = head_goroot.rstrip("/") + SRC
    if not path.startswith(prefix) or "/../" in path:
        return None
    return (own_src if own_src is not None else _own_src()) + path[len(prefix):]


def holds(path: str, sha: str) -> bool:
    """Whether the file at PATH hashes to SHA (each version of a file hashed once)."""
    try:
        version = file_version(os.stat(path))
    except OSError:
        return False
    with _lock:
        known = _hashes.get(path)
    if known is None or known[0] != version:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False
        known = (version, sha256(data))
        with _lock:
            _hashes[path] = known
    return known[1] == sha


def sources(task_inputs: Mapping[str, str], from_goroot: list[str], head_goroot: str,
            store: Store, sandboxes: str) -> dict[str, str]:
    """Of TASK_INPUTS (path -> sha256), those sent as FROM_GOROOT that this worker's own
    GOROOT holds as they are: path -> the file to link into a sandbox. Where this GOROOT
    cannot be linked into SANDBOXES (another filesystem, or files of another user), each
    is stored once instead (read here, not sent), and found in STORE like any blob."""
    if not from_goroot:
        return {}
    wanted = set(from_goroot)
    found: dict[str, str] = {}  # sha256 -> its file here
    for path, sha in task_inputs.items():
        if sha in wanted and sha not in found and \
                (own := own_path(head_goroot, path)) is not None and holds(own, sha):
            found[sha] = own
    if not linkable(sandboxes):
        for sha, own in found.items():
            if not store.has(sha):
                with open(own, "rb") as f:
                    store.put(sha, f.read())
        return {}
    # every input of those contents: another of the same bytes elsewhere too (an empty file)
    return {path: found[sha] for path, sha in task_inputs.items() if sha in found}


@functools.cache
def linkable(into: str) -> bool:
    """Whether a file of this GOROOT can be linked into the directory INTO: the same
    filesystem, and a file the kernel lets this user link (a GOROOT of another user is
    refused under fs.protected_hardlinks). Asked once a process (two threads asking at once
    both probe, each under a name of its own)."""
    probe = f"{into}/.goroot-link-{os.getpid()}-{threading.get_ident()}"
    try:
        os.link(toolchain.goroot() / "VERSION", probe)
    except OSError:
        return False
    os.unlink(probe)
    return True
