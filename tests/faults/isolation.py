"""A worker that shares no filesystem with the head node, as on another host.

One way, used by the fault suite (tests/faults/test_faults.py) and by the scale-out
experiment's emulated hosts (experiments/hosts.py): the worker gets an installation of its
own (`make_install`: a copy of the pinned GOROOT and of the patched compiler, empty store,
home, temp and GOCACHE directories) and runs under isolate.sh in a private mount namespace
where that installation is /mnt/fgo-worker and the head's directories are hidden.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import fgo
from fgo import paths, toolchain
from fgo.compiler import patched as compiler_patch

ISOLATE_SH = Path(__file__).resolve().with_name("isolate.sh")
MOUNT = "/mnt/fgo-worker"     # where isolate.sh binds the installation
# store-gocache: the cluster tier's share beside the store (fgo.cache.store._cache_root)
SCRATCH = ("store", "store-gocache", "home", "tmp", "gocache")


def install_patched_compiler(cache: Path) -> Path:
    """This host's patched compiler copied into the fgo cache dir CACHE (FGO_CACHE_DIR) of
    another worker, as `fgo worker-setup` would build it there; its compile binary."""
    mine = compiler_patch.ensure_compiler().path.parent
    theirs = cache / compiler_patch.cache_root().name / mine.name
    shutil.copytree(mine, theirs, ignore=shutil.ignore_patterns("build-*", "*.lock"))
    return theirs / "compile"


def make_install(root: Path) -> Path:
    """A worker's own installation in ROOT, as `pip install fgo` + `fgo worker-setup` leave
    it on another host: a copy of the pinned GOROOT (found first on PYTHONPATH) and the
    patched compiler in its own cache; empty store, home, temp and GOCACHE directories."""
    (root / "site").mkdir(parents=True)
    subprocess.run(["cp", "-a", str(toolchain.goroot()), str(root / "site" / "go")], check=True)
    install_patched_compiler(root / "cache")
    for d in SCRATCH:
        (root / d).mkdir()
    return root


def empty_scratch(install: Path) -> None:
    """The installation's store, home, temp and GOCACHE emptied: a cold worker again."""
    for d in SCRATCH:
        shutil.rmtree(install / d, ignore_errors=True)
        (install / d).mkdir()


def worker_env() -> dict[str, str]:
    """The environment of a worker inside isolate.sh: everything in its installation."""
    return {"PYTHONPATH": f"{MOUNT}/site", "HOME": f"{MOUNT}/home", "TMPDIR": f"{MOUNT}/tmp",
            "FGO_STORE": f"{MOUNT}/store", "FGO_CACHE_DIR": f"{MOUNT}/cache",
            "GOCACHE": f"{MOUNT}/gocache"}


def head_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """The head's directories a worker must not see: EXTRA (projects, build outputs), the
    pinned GOROOT, fgo's and go's caches and the head's temp directory (its host token,
    go's work directories). /tmp itself is the worker's own (isolate.sh)."""
    hide = [*extra, toolchain.goroot(), paths.cache_dir(), Path.home() / ".cache" / "go-build",
            Path(tempfile.gettempdir())]
    return [p for p in dict.fromkeys(hide) if p.is_dir()]


def keep_dirs(hide: Iterable[Path]) -> list[Path]:
    """What the worker runs from (this Python's prefix, the fgo checkout) where HIDE or the
    worker's own /tmp would cover it: a checkout or venv under /tmp."""
    covers = [*hide, Path("/tmp")]
    mine = [Path(sys.prefix).resolve(), Path(fgo.__file__).resolve().parents[1]]
    return [p for p in dict.fromkeys(mine) if any(p.is_relative_to(h) for h in covers)]


def isolate_prefix(install: Path, hide: Iterable[Path]) -> list[str]:
    """The command prefix that runs a command as a worker on a host of its own."""
    hide = list(hide)
    keep = keep_dirs(hide)
    return ["unshare", "-m", "sh", str(ISOLATE_SH), str(install), *map(str, hide),
            *(["--keep", *map(str, keep)] if keep else []), "--"]


def unavailable() -> str | None:
    """Why workers cannot be isolated here (no mount namespaces), or None."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no mount namespaces here: {probe.stderr.strip()}"
