"""Build (once) and locate the compiled -toolexec shim (see shim.go for why it is Go)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from fgo import toolchain
from fgo.paths import cache_dir

SOURCE = Path(__file__).with_name("shim.go")


def shim_path() -> Path:
    """The shim binary for this source and toolchain, built on first use."""
    key = hashlib.sha256(SOURCE.read_bytes() + toolchain.go_version().encode()).hexdigest()[:16]
    exe = cache_dir() / "shim" / key / "fgo-shim"
    if exe.exists():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=exe.parent) as tmp:
        tmp_exe = Path(tmp) / "fgo-shim"
        env = toolchain.go_env(GO111MODULE="off", CGO_ENABLED="0")
        toolchain.run_go(["build", "-trimpath", "-o", str(tmp_exe), str(SOURCE)], env=env, cwd=tmp)
        os.replace(tmp_exe, exe)  # atomic: concurrent builders both succeed
    return exe
