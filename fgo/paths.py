"""Where fgo keeps its files on this host."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """fgo's cache root: $FGO_CACHE_DIR, else $XDG_CACHE_HOME/fgo, else ~/.cache/fgo."""
    if env := os.environ.get("FGO_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "fgo"
