"""The export data of one build's packages, as pipelining learns it.

Export data arrives early, from a compile's frontend while its backend still runs (a
remote compile, a split's leader, a speculation: an ExportReady), or late, from an archive
go build already has. `arrived` only queues it (it may be called on the event loop);
`drain`, on the speculator's thread, keeps each package's newest as a file a speculation's
importcfg can name. A real compile's export data replaces a speculation's.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo.fileio import file_version
from fgo.goarchive import read_export_data
from fgo.planner import prediction


@dataclass
class Export:
    """A package's export data as this build knows it."""

    sha: str            # prediction.export_data_sha (without the build ID line)
    path: str           # a file holding it (an archive starting with __.PKGDEF)
    speculative: bool   # from a speculative compile (a real one's replaces it)


class Exports:
    """This build's export data, kept under DIR."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "exports"
        self.lock = threading.Lock()
        self.known: dict[str, Export] = {}
        self.inbox: list[tuple[str, bytes, bool]] = []
        self.early = 0                          # export data that came before the result
        self.early_split: set[str] = set()      # of those, from split compiles' leaders
        self.early_at: dict[tuple[str, bool], float] = {}  # (package, speculative) -> worker time
        self.fracs: dict[str, float] = {}       # when in its compile the export data came
        self._by_file: dict[tuple[str, int, int, int, int], str] = {}  # file version -> sha
        self._seq = 0

    def arrived(self, package: str, data: bytes, speculative: bool = False,
                early: bool = True, at: float | None = None, split: bool = False) -> None:
        """PACKAGE's export data came, EARLY while its backend still runs (from a split's
        leader: SPLIT), written at AT (the worker's clock); no waiting."""
        with self.lock:
            self.inbox.append((package, data, speculative))
            self.early += early
            if split:
                self.early_split.add(package)
            if at is not None:
                self.early_at[(package, speculative)] = at

    def pending(self) -> bool:
        with self.lock:
            return bool(self.inbox)

    def drain(self) -> list[str]:
        """Keep what arrived; the packages whose export data is new."""
        with self.lock:
            inbox, self.inbox = self.inbox, []
        return [pkg for pkg, data, spec in inbox if self._keep(pkg, data, spec)]

    def _keep(self, package: str, data: bytes, speculative: bool) -> bool:
        try:
            sha = prediction.export_data_sha(data)
        except prediction.PredictError:
            return False
        with self.lock:
            have = self.known.get(package)
            if have is not None and (have.sha == sha or speculative and not have.speculative):
                return False
            self._seq += 1
            path = self.dir / f"{self._seq}.a"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self.lock:
            self.known[package] = Export(sha, str(path), speculative)
        return True

    def get(self, package: str) -> Export | None:
        with self.lock:
            return self.known.get(package)

    def packages(self) -> list[str]:
        with self.lock:
            return list(self.known)

    def timed(self, package: str, speculative: bool, result: Any) -> None:
        """When in its compile (a share of the tool's wall time) RESULT's package had its
        export data: the simulator's frontend share (experiment 7)."""
        with self.lock:
            at = self.early_at.get((package, speculative))
        took = getattr(result, "tool_done", 0.0) - getattr(result, "tool_start", 0.0)
        if at is not None and took > 0:
            self.fracs[package] = round(min(1.0, max(0.0, (at - result.tool_start) / took)), 4)

    def archive_written(self, package: str, archive: str, result: Any = None) -> None:
        """A real compile of PACKAGE wrote ARCHIVE (its export data is final); RESULT is the
        remote compile's, if it was one."""
        if result is not None:
            self.timed(package, False, result)
        with self.lock:
            came_early = (package, False) in self.early_at  # identical (patch 0013)
        if came_early:
            return
        try:
            data = read_export_data(archive)
        except OSError:
            return
        self.arrived(package, data, early=False)

    def of_importcfg(self, importcfg: str) -> dict[str, str]:
        """The export data sha of each import of a real request's IMPORTCFG (their archives
        are final): learned for later speculations too."""
        out = {}
        for imp, file in prediction.packagefiles(importcfg).items():
            out[imp], data = self.of_file(file)
            have = self.get(imp)
            if have is None or have.speculative and have.sha != out[imp]:
                self.arrived(imp, data or read_export_data(file), early=False)
        return out

    def of_file(self, file: str) -> tuple[str, bytes | None]:
        """FILE's export data sha; and its export data when it had to be read for it (the
        sha is kept per file version)."""
        key = (file, *file_version(os.stat(file)))
        sha = self._by_file.get(key)
        if sha is not None:
            return sha, None
        data = read_export_data(file)
        sha = self._by_file[key] = prediction.export_data_sha(data)
        return sha, data
