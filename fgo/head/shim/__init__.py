"""Build (once) and locate the compiled -toolexec shim (see shim.go for why it is Go)."""

from __future__ import annotations

from pathlib import Path

from fgo import toolchain

SOURCE = Path(__file__).with_name("shim.go")


def shim_path() -> Path:
    """The shim binary for this source and toolchain, built on first use."""
    return toolchain.go_program(SOURCE, "fgo-shim")
