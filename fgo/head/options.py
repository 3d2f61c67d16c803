"""One `fgo build`'s settings, as the build's head takes them: a module of its own because
every build reads them, while what serves compiles (fgo.head.session) is loaded only by a
build that may have some to serve (one that go compiles alone never has)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fgo.settings import default


@dataclass
class BuildOptions:
    """One build's settings: fgo.settings has their defaults, help and validation."""

    project: str
    go_args: list[str] = field(default_factory=list)
    scheduler: str | None = default("scheduler")        # None: embedded LocalCluster
    workers: int | None = default("workers")            # embedded cluster size
    threads: int = default("threads")                   # threads per embedded worker
    local_slots: int | None = default("local_slots")    # the head's own compiles; None: cores
    report: str | None = None                           # the JSON report goes here
    trace: str | None = None                            # a Chrome trace (Perfetto) goes here
    progress: bool = False                              # live progress line (on a terminal)
    verbose: bool = False                               # a line per compile
    fallback_local: bool = default("fallback_local")    # no scheduler: build locally
    tls: tuple[str | None, str | None, str | None] = (None, None, None)  # ca, cert, key
    split_large: str | None = default("split_large")    # None: off; "auto"; or SECONDS
    shards: str = default("shards")                     # K or "auto"
    check: bool = False                                 # also build plainly and compare
    quiet: bool = False
    timeout: float = default("timeout")                 # a slower remote compile runs here
    verify_rate: float = default("verify_rate")         # share compiled again and compared
    verify_catch: float | None = default("verify_catch")  # a wrong share to catch at 99%
    verify_splits: str = default("verify_splits")       # first | always | off
    shared_cache: bool = default("shared_cache")        # with --scheduler: fgo cacheprog
    cache_size: int = default("cache_size")             # the local tier's size limit
    cache_timeout: float = default("cache_timeout")     # a slower cluster tier: off
    cache_key: str | None = default("cache_key")        # the heads' key (fgo.cache.trust)
    cache_recheck: float = default("cache_recheck")     # share of cluster hits re-checked
    pipeline: bool | None = default("pipeline")         # None: where it pays

    @classmethod
    def of(cls, project: str, go_args: list[str], settings: dict[str, Any],
           progress: bool = False) -> BuildOptions:
        """The options from resolved SETTINGS (fgo.settings.resolve)."""
        names = set(cls.__dataclass_fields__) - {"project", "go_args", "tls", "progress"}
        values = {n: settings[n] for n in names if n in settings and settings[n] is not None}
        return cls(project=project, go_args=list(go_args), progress=progress,
                   tls=(settings.get("tls_ca_file"), settings.get("tls_cert"),
                        settings.get("tls_key")),
                   **values)
