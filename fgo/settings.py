"""fgo's settings, in one table: each with its default, help, validation and the verbs that
take it. The click options, the FGO_<NAME> environment variables and the `[tool.fgo]`
table of a pyproject.toml all come from here; a value from any of them goes through the
same validation and a bad one is one line naming where it came from.

Precedence: defaults < pyproject.toml [tool.fgo] < FGO_* environment < flags. The
pyproject.toml read is the first one found in the project directory or above it that has
a [tool.fgo] table, so a repository can pin its cluster.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo.errors import FgoError

# ------------------------------------------------------------------ value parsers (pure)


def parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in {"1", "true", "yes", "on"}:
        return True
    if str(v).lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {v!r}")


def parse_size(text: str | int) -> int:
    """Bytes from '5G', '200M', '64k', '0' or an int (binary units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"negative size {text}")
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 5G, 200M, 0)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def _share(v: Any) -> float:
    rate = float(v)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"not a share between 0 and 1: {v!r}")
    return rate


def _positive(v: Any) -> float:
    seconds = float(v)
    if seconds <= 0:
        raise ValueError(f"not a positive number: {v!r}")
    return seconds


def _at_least(low: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        n = int(v)
        if n < low:
            raise ValueError(f"{n} is less than {low}")
        return n
    return parse


def _one_of(*choices: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if str(v) not in choices:
            raise ValueError(f"not {', '.join(choices[:-1])} or {choices[-1]}: {v!r}")
        return str(v)
    return parse


def _file(v: Any) -> str:
    path = str(v)
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    return path


def _split_large(v: Any) -> str:
    """"auto", or SECONDS >= 0 (as text, the way the build takes it)."""
    if str(v) == "auto":
        return "auto"
    seconds = float(v)
    if seconds < 0:
        raise ValueError(f"negative seconds: {v!r}")
    return str(v)


def _shards(v: Any) -> str:
    """"auto", or K >= 2."""
    if str(v) == "auto":
        return "auto"
    k = int(v)
    if k < 2:
        raise ValueError(f"K must be at least 2, or auto: {v!r}")
    return str(k)


def _text(v: Any) -> str:
    return str(v)


def _path(v: Any) -> str:
    path = str(v)
    if not path.strip():
        raise ValueError("an empty path")
    return path


# ------------------------------------------------------------------ the table

BUILD, CACHEPROG, CACHE = "build", "cacheprog", "cache"


@dataclass(frozen=True)
class Setting:
    name: str                          # python name; flag --name-with-dashes, env FGO_NAME
    parse: Callable[[Any], Any]
    default: Any
    help: str                          # "{default}" is replaced by the default's text
    verbs: tuple[str, ...] = (BUILD,)
    metavar: str | None = None
    kind: str = "value"                # value | flag | pair (--x/--no-x) | optional (--x[=V])
    short: str | None = None           # a one-letter flag, e.g. "-q"
    env: bool = True                   # settable by FGO_NAME and [tool.fgo]
    shown_default: str | None = None   # the default as the help says it

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_name(self) -> str:
        return f"FGO_{self.name.upper()}"

    def help_text(self) -> str:
        shown = self.shown_default if self.shown_default is not None else self.default
        text = self.help.replace("{default}", str(shown))
        if self.default is not None and self.kind in ("value", "pair") and "{default}" not in self.help:
            text += f" [{shown}]"
        return text


TLS = (CACHEPROG, CACHE, BUILD)
SETTINGS: tuple[Setting, ...] = (
    Setting("scheduler", _text, None, "An existing Dask scheduler, tcp://HOST:PORT (default: "
            "an embedded LocalCluster; for cacheprog and cache: the local tier only).",
            verbs=(BUILD, CACHEPROG, CACHE), metavar="tcp://HOST:PORT"),
    Setting("workers", _at_least(1), None, "Embedded cluster: number of workers (default: "
            "one per core).", metavar="N"),
    Setting("threads", _at_least(1), 1, "Embedded cluster: threads per worker.", metavar="T"),
    Setting("local_slots", _at_least(0), None,
            "Compiles the head node runs itself, with nothing but the compiler in their path, "
            "before any goes to a worker (default: the head's cores; with no --scheduler, "
            "--workers, --split-large or --pipeline, go build then compiles alone, without "
            "fgo's shim); 0: a head that must not compile (e.g. DAS-5's login node).",
            metavar="N"),
    Setting("report", _text, None, "Write the JSON build report here.", metavar="FILE.json",
            env=False),
    Setting("trace", _text, None, "Write a Chrome trace of the build (Perfetto) here.",
            metavar="FILE.json", env=False),
    Setting("check", parse_bool, False, "Also build with plain go build into an empty GOCACHE "
            "and compare every archive and binary.", kind="flag", env=False),
    Setting("timeout", _positive, 600.0, "Seconds before a remote compile is run locally "
            "instead.", metavar="S"),
    Setting("fallback_local", parse_bool, False, "If the scheduler cannot be reached, build "
            "locally instead of failing.", kind="flag"),
    Setting("tls_ca_file", _file, None, "TLS: the cluster's CA certificate.", verbs=TLS,
            metavar="PEM"),
    Setting("tls_cert", _file, None, "TLS: this client's certificate.", verbs=TLS,
            metavar="PEM"),
    Setting("tls_key", _file, None, "TLS: this client's private key.", verbs=TLS,
            metavar="PEM"),
    Setting("split_large", _split_large, None,
            "Split large packages' compiles into shards on several workers; SECONDS: "
            "predicted compile time above which to split (0: every package; bare: when the "
            "cost model predicts a gain). The next word is read as SECONDS only when it is a "
            "number.", kind="optional", metavar="[=SECONDS]"),
    Setting("shards", _shards, "auto", "Shards per split package: K >= 2, or auto.",
            metavar="K|auto"),
    Setting("verify_rate", _share, 0.03,
            "Share of remote compiles compiled again and compared: on the head node when it "
            "has a core free, else on another worker (besides one of each worker's first "
            "compiles, on the head).", metavar="R"),
    Setting("verify_catch", _share, None,
            "Check enough of each worker's compiles to catch, with 99% confidence, one that "
            "is wrong on this share of them (0.05: 90 checks a worker, the build's size taken "
            "from an earlier build of the same target; with none, every compile) "
            "[off: --verify-rate only].",
            metavar="Q"),
    Setting("verify_splits", _one_of("first", "always", "off"), "first",
            "Compile a split package stock on the head node and compare: the first time its "
            "inputs are seen, always, or never.", metavar="first|always|off"),
    Setting("shared_cache", parse_bool, True,
            "With --scheduler: go's build cache through fgo cacheprog, a local tier in front "
            "of one held by the workers; verified builds publish to it.", kind="pair",
            shown_default="on"),
    Setting("cache_size", parse_size, "5G", "The local tier's size limit, e.g. 5G.",
            verbs=(BUILD, CACHEPROG, CACHE), metavar="BYTES"),
    Setting("cache_timeout", _positive, 2.0,
            "A cluster-tier request slower than this turns that tier off.",
            verbs=(BUILD, CACHEPROG), metavar="SECONDS"),
    Setting("cache_key", _path, None,
            "The key heads sign and check cluster-tier entries with (workers never see it); "
            "a file named here must exist. Default: cache.key beside --tls-key, else "
            "~/.config/fgo/cache.key, made with 32 random bytes (mode 0600) by the first head "
            "that needs it; teammates share it like the TLS files.", verbs=(BUILD, CACHEPROG),
            metavar="FILE"),
    Setting("cache_recheck", _share, 0.03,
            "Share of cluster hits a worker computed and no head compared that are answered "
            "as misses, so that go computes them again and the result is compared with the "
            "entry (a difference revokes it, and its producer's other entries).",
            verbs=(BUILD, CACHEPROG), metavar="R"),
    Setting("pipeline", parse_bool, None,
            "Start a package's dependents from its export data while its backend still runs "
            "(speculative compiles, matched by content).", kind="pair",
            shown_default="on with more than one worker host and 4 threads"),
    Setting("quiet", parse_bool, False, "Print nothing but go build's own output.",
            kind="flag", short="-q", env=False),
    Setting("verbose", parse_bool, False, "Print a line per compile fgo ran.", kind="flag",
            short="-v", env=False),
)
BY_NAME = {s.name: s for s in SETTINGS}


def default(name: str) -> Any:
    """NAME's default, parsed (what a build gets when nothing sets it)."""
    s = BY_NAME[name]
    return None if s.default is None else s.parse(s.default)


def for_verb(verb: str) -> list[Setting]:
    return [s for s in SETTINGS if verb in s.verbs]


def click_options(verb: str, only: tuple[str, ...] | None = None) -> Callable[[Any], Any]:
    """A decorator adding VERB's settings (or ONLY these) as click options; each defaults
    to None, so that `resolve` tells a flag given from one not given."""
    import click

    def decorate(f: Any) -> Any:
        chosen = [s for s in for_verb(verb) if only is None or s.name in only]
        for s in reversed(chosen):
            names = [s.flag] + ([s.short] if s.short else [])
            if s.kind == "flag":
                opt = click.option(*names, s.name, is_flag=True, default=None, help=s.help_text())
            elif s.kind == "pair":
                no = "--no-" + s.name.replace("_", "-")
                opt = click.option(f"{s.flag}/{no}", s.name, default=None, help=s.help_text())
            elif s.kind == "optional":
                opt = click.option(s.flag, s.name, is_flag=False, flag_value="auto",
                                   default=None, metavar=s.metavar, help=s.help_text())
            else:
                opt = click.option(*names, s.name, default=None, metavar=s.metavar,
                                   help=s.help_text())
            f = opt(f)
        return f
    return decorate


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


def resolve(project: Path, flags: dict[str, Any], environ: dict[str, str] | None = None,
            verb: str = BUILD) -> dict[str, Any]:
    """VERB's effective settings; FLAGS holds None for every flag not given. A bad value is
    an FgoError naming where it came from."""
    environ = dict(os.environ) if environ is None else environ
    table, origin = pyproject_settings(project)
    known = {s.name for s in SETTINGS if s.env}
    unknown = {k.replace("-", "_") for k in table} - known
    if unknown:
        raise FgoError(f"{origin}: unknown [tool.fgo] setting {sorted(unknown)[0]!r}")
    out: dict[str, Any] = {}
    for s in for_verb(verb):
        value, where = s.default, "default"
        if s.env:
            for key in (s.name, s.name.replace("_", "-")):
                if key in table:
                    value, where = table[key], f"{origin} [tool.fgo] {key}"
            if s.env_name in environ:
                value, where = environ[s.env_name], s.env_name
        if flags.get(s.name) is not None:
            value, where = flags[s.name], s.flag
        try:
            out[s.name] = None if value is None else s.parse(value)
        except (TypeError, ValueError) as exc:
            raise FgoError(f"{where}: bad value {value!r} for {s.flag}: {exc}") from None
    tls = [out.get(n) for n in ("tls_ca_file", "tls_cert", "tls_key")]
    if any(tls) and not all(tls):
        raise FgoError("TLS needs all of --tls-ca-file, --tls-cert and --tls-key")
    return out


def tls(settings: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    return settings.get("tls_ca_file"), settings.get("tls_cert"), settings.get("tls_key")
