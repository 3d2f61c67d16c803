"""fgo's settings: defaults < pyproject.toml [tool.fgo] < FGO_* environment < flags.

The pyproject.toml read is the first one found in the project directory or
above it that has a [tool.fgo] table, so a repository can pin its cluster.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Callable

from fgo.errors import FgoError


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in {"1", "true", "yes", "on"}:
        return True
    if str(v).lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {v!r}")


def _rate(v: Any) -> float:
    rate = float(v)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"not a share between 0 and 1: {v!r}")
    return rate


def _split_mode(v: Any) -> str:
    if str(v) not in ("first", "always", "off"):
        raise ValueError(f"not first, always or off: {v!r}")
    return str(v)


def _size(v: Any) -> int:
    from fgo.cache.local import parse_size
    return parse_size(v if isinstance(v, int) else str(v))


def _seconds(v: Any) -> float:
    seconds = float(v)
    if seconds <= 0:
        raise ValueError(f"not a positive number of seconds: {v!r}")
    return seconds


# name -> (parse, default). Flag --NAME-WITH-DASHES, env FGO_NAME, pyproject key name-with-dashes.
SETTINGS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "scheduler": (str, None),
    "workers": (int, None),
    "threads": (int, 1),
    "timeout": (float, 600.0),
    "fallback_local": (_bool, False),
    "tls_ca_file": (str, None),
    "tls_cert": (str, None),
    "tls_key": (str, None),
    "verify_rate": (_rate, 0.03),
    "verify_splits": (_split_mode, "first"),
    "shared_cache": (_bool, True),        # with a scheduler: GOCACHEPROG = fgo cacheprog
    "cache_size": (_size, "5G"),          # the head's local tier (workers: FGO_CACHE_SIZE)
    "cache_timeout": (_seconds, 2.0),     # a cluster-tier request slower than this: tier off
    "pipeline": (_bool, None),            # None: on with more than one worker host
}


def pyproject_settings(start: Path) -> tuple[dict[str, Any], Path | None]:
    for d in (start, *start.parents):
        f = d / "pyproject.toml"
        if f.is_file():
            try:
                table = tomllib.loads(f.read_text()).get("tool", {}).get("fgo")
            except (tomllib.TOMLDecodeError, OSError) as exc:
                raise FgoError(f"{f}: {exc}") from None
            if table is not None:
                return table, f
    return {}, None


def resolve(project: Path, flags: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The effective settings; FLAGS holds None for every flag not given."""
    environ = os.environ if environ is None else environ
    table, origin = pyproject_settings(project)
    unknown = set(k.replace("-", "_") for k in table) - SETTINGS.keys()
    if unknown:
        raise FgoError(f"{origin}: unknown [tool.fgo] setting {sorted(unknown)[0]!r}")
    out = {}
    for name, (parse, default) in SETTINGS.items():
        value, where = default, "default"
        for key in (name, name.replace("_", "-")):
            if key in table:
                value, where = table[key], f"{origin} [tool.fgo] {key}"
        if f"FGO_{name.upper()}" in environ:
            value, where = environ[f"FGO_{name.upper()}"], f"FGO_{name.upper()}"
        if flags.get(name) is not None:
            value, where = flags[name], f"--{name.replace('_', '-')}"
        try:
            out[name] = None if value is None else parse(value)
        except (TypeError, ValueError):
            raise FgoError(f"{where}: bad value {value!r} for {name.replace('_', '-')}") from None
    if out["workers"] is not None and out["workers"] < 1 or out["threads"] < 1:
        raise FgoError("workers and threads must be at least 1")
    return out
