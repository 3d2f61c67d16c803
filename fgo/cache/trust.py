"""Trust in the cluster tier: heads sign, workers keep, heads check.

Only heads write the index. Each entry a head publishes is signed with HMAC-SHA256 under a
key the heads share and workers never hold (the `cache_key` file, kept beside the TLS
files): the signature covers a canonical encoding of the namespace, action ID, output ID,
size, producer, whether the publishing build verified that compile, put time and compile
seconds. A worker keeps the signed fields and the body, and can neither make nor change an
entry a head will use: a head takes an entry only when its signature verifies and its body
hashes to the signed output ID. A head that finds an entry wrong revokes it (or everything
its producer computed) with a revocation signed the same way, which every worker keeps.

All pure but `load_key`, which reads (and on first use creates) the key file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable
from urllib.parse import quote, unquote

if TYPE_CHECKING:  # (imported when used: fgo.wire's message classes cost a helper's start)
    from fgo.wire import CacheEntry, CacheRevocation

ENTRY_DOMAIN = "fgo-cache-entry/1"
REVOCATION_DOMAIN = "fgo-cache-revocation/1"
HEAD = "head"                  # the producer of what a head computed itself
KEY_BYTES = 32                 # what a new key holds
MIN_KEY_BYTES = 16             # a shorter key file is refused


class CacheKeyError(ValueError):
    """The key file cannot be used (unreadable, too short, open to others)."""


# ------------------------------------------------------------------ canonical encoding

def canonical(domain: str, fields: Iterable[str]) -> bytes:
    """DOMAIN and FIELDS, each as a 4-byte big-endian length and its UTF-8: one byte string
    per sequence of fields (no separator can be forged into a field)."""
    out = bytearray()
    for f in (domain, *fields):
        b = f.encode()
        out += len(b).to_bytes(4, "big") + b
    return bytes(out)


def _seconds(x: float) -> str:
    return f"{float(x):.3f}"


def entry_message(ns: str, e: CacheEntry) -> bytes:
    """What a head signs about entry E of namespace NS (its body only through its output ID
    and size)."""
    return canonical(ENTRY_DOMAIN, (ns, e.action, e.output, str(int(e.length)), e.producer,
                                    "1" if e.checked is True else "0", _seconds(e.put_time),
                                    _seconds(e.seconds)))


def revocation_message(ns: str, r: CacheRevocation) -> bytes:
    return canonical(REVOCATION_DOMAIN, (ns, r.action, r.output, r.producer, r.reason,
                                         _seconds(r.time)))


def mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _same(signature: object, expected: str) -> bool:
    return isinstance(signature, str) and hmac.compare_digest(signature.encode(),
                                                              expected.encode())


# ------------------------------------------------------------------ entries

def sign_entry(key: bytes, ns: str, e: CacheEntry) -> CacheEntry:
    """E signed (times rounded to the milliseconds the signature and the disks keep)."""
    e = replace(e, put_time=round(float(e.put_time), 3), seconds=round(float(e.seconds), 3),
                signature="")
    return replace(e, signature=mac(key, entry_message(ns, e)))


def entry_signed(key: bytes, ns: str, e: CacheEntry) -> bool:
    """E's signature is the head's over exactly these fields (a worker's plain data may hold
    anything: whatever does not even encode is not signed)."""
    try:
        return bool(e.signature) and _same(e.signature, mac(key, entry_message(ns, e)))
    except (TypeError, ValueError, AttributeError, OverflowError):
        return False


def body_matches(e: CacheEntry) -> bool:
    """E's body is the one its output ID and size name."""
    return (isinstance(e.body, bytes) and len(e.body) == e.length
            and hashlib.sha256(e.body).hexdigest() == e.output)


def index_verdict(key: bytes | None, ns: str, e: CacheEntry, revoked: "Revoked") -> str:
    """What a head makes of entry E in a worker's index: "usable", "forged" (no valid
    signature under KEY for NS; without a key nothing is) or "refused" (a revocation covers
    it)."""
    if key is None or not entry_signed(key, ns, e):
        return "forged"
    if revoked.covers(e.action, e.output, e.producer):
        return "refused"
    return "usable"


def fetched_verdict(key: bytes | None, ns: str, indexed: CacheEntry,
                    found: CacheEntry) -> str:
    """What a head makes of the entry FOUND on a get, the index having said INDEXED:
    "usable"; "forged" when its signature does not verify or it is not the entry the index
    named (a worker swapping in another signed entry); "altered" when its body does not hash
    to the signed output ID and size."""
    if key is None or not entry_signed(key, ns, found) \
            or (found.action, found.output, found.signature) != \
            (indexed.action, indexed.output, indexed.signature):
        return "forged"
    if not body_matches(found):
        return "altered"
    return "usable"


# ------------------------------------------------------------------ producers

def join_producers(workers: Iterable[str]) -> str:
    """One producer field for the workers that computed an output together (a split's
    shards and leader): sorted, joined by "+" (worker addresses hold none)."""
    return "+".join(sorted({w for w in workers if w})) or HEAD


def producers(producer: str) -> frozenset[str]:
    return frozenset(p for p in str(producer).split("+") if p)


def from_workers(producer: str) -> bool:
    """Whether a worker took part in computing it (a head's own output is trusted)."""
    return bool(producers(producer) - {HEAD})


# ------------------------------------------------------------------ revocations

def revoke_entry(key: bytes, ns: str, action: str, output: str, reason: str,
                 now: float) -> CacheRevocation:
    from fgo.wire import CacheRevocation
    r = CacheRevocation(action=action, output=output, reason=reason, time=round(now, 3))
    return replace(r, signature=mac(key, revocation_message(ns, r)))


def revoke_producer(key: bytes, ns: str, producer: str, reason: str,
                    now: float) -> CacheRevocation:
    from fgo.wire import CacheRevocation
    r = CacheRevocation(producer=producer, reason=reason, time=round(now, 3))
    return replace(r, signature=mac(key, revocation_message(ns, r)))


def revocation_signed(key: bytes, ns: str, r: CacheRevocation) -> bool:
    try:
        return bool(r.signature) and _same(r.signature, mac(key, revocation_message(ns, r)))
    except (TypeError, ValueError, AttributeError, OverflowError):
        return False


def recheck_revocations(key: bytes, ns: str, mismatches: list[dict[str, str]],
                        now: float) -> list[CacheRevocation]:
    """The revocations for re-checks whose compile differed from the signed entry: each
    entry, and every worker that produced one (all it computed is in doubt)."""
    out: dict[tuple[str, str, str], CacheRevocation] = {}
    for m in mismatches:
        action, signed = m["action"], m["signed_output"]
        out.setdefault((action, signed, ""), revoke_entry(
            key, ns, action, signed, f"re-check: go computed {m['output'][:16]}", now))
        for worker in sorted(producers(m["producer"]) - {HEAD}):
            out.setdefault(("", "", worker), revoke_producer(
                key, ns, worker, f"re-check: its entry {action[:16]} was wrong", now))
    return list(out.values())


def worker_revocations(key: bytes, ns: str, workers: Iterable[str], reason: str,
                       now: float) -> list[CacheRevocation]:
    """Revocations of everything WORKERS produced (fgo build's verification found them
    wrong)."""
    return [revoke_producer(key, ns, w, reason, now) for w in sorted(set(workers)) if w]


@dataclass
class Revoked:
    """What a head knows to be revoked: entries by (action, output), workers as producers.

    A producer's revocation is for good: every entry it took part in, whenever published
    (a worker address with a fixed port stays revoked until `fgo cache clear`)."""

    entries: set[tuple[str, str]] = field(default_factory=set)
    producers: set[str] = field(default_factory=set)

    def add(self, r: CacheRevocation) -> None:
        if r.producer:
            self.producers.add(r.producer)
        elif r.action and r.output:
            self.entries.add((r.action, r.output))

    def covers(self, action: str, output: str, producer: str) -> bool:
        return (action, output) in self.entries or bool(producers(producer) & self.producers)

    def __len__(self) -> int:
        return len(self.entries) + len(self.producers)


# ------------------------------------------------------------------ hits checked after

# Under fgo build, when its head does not know that the revocations it keeps are all the
# cluster's (fgo.cluster.beacon), go's cache helper (and its front) still answers a hit of a
# worker's local entry at once, and logs it ("<action> <output> <producer, %-quoted>" a
# line, FGO_CACHE_CHECK_AFTER); the head, which reads the revocations once it connects,
# checks the log before it lets a link run and before the build succeeds (`revoked_in_use`).
# Such a hit had waited for the head's connect and the cluster's index, Dask's import most
# of it, on go's path.

def used_line(action: str, output: str, producer: str) -> str:
    """The log line of a worker's entry handed to go before the revocations were read."""
    return f"{action} {output} {quote(producer, safe='')}\n"


def used_entries(text: str) -> list[tuple[str, str, str]]:
    """The (action, output, producer) of each whole line of a check-after log (a line cut
    short by a helper that died mid-write is left out: go never got that answer)."""
    out = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if line.endswith("\n") and len(fields) == 3:
            out.append((fields[0], fields[1], unquote(fields[2])))
    return out


def revoked_in_use(used: Iterable[tuple[str, str, str]],
                   revoked: Revoked) -> list[tuple[str, str, str]]:
    """Of USED (`used_entries`), those a revocation covers, each once, in log order."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for u in used:
        if u not in seen and revoked.covers(*u):
            seen.add(u)
            out.append(u)
    return out


# ------------------------------------------------------------------ sampled re-checks

def sampled(secret: bytes, action: str, rate: float) -> bool:
    """Whether to re-check ACTION: HMAC(SECRET, action) read as a number in [0, 1) below
    RATE. The head's SECRET is fresh per process (`new_secret`), so no worker can tell which
    hits will be re-checked, and each use of an entry is an independent draw: a wrong entry
    many builds use is caught with probability 1 - (1 - RATE)^uses, not RATE once for good."""
    if rate <= 0:
        return False
    digest = hmac.new(secret, b"fgo-recheck\0" + action.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2 ** 64


def recheck_wanted(secret: bytes, e: CacheEntry, rate: float) -> bool:
    """Re-check cluster hit E? Only what a worker computed and no head compared: a head's
    own outputs are trusted, a checked compile was compared byte for byte already (and
    some of a head's outputs, e.g. test results, are not reproducible)."""
    return from_workers(e.producer) and not e.checked and sampled(secret, e.action, rate)


def new_secret() -> bytes:
    return secrets.token_bytes(32)


# ------------------------------------------------------------------ the key file

DEFAULT_KEY = "~/.config/fgo/cache.key"
KEY_NAME = "cache.key"


def key_path(setting: str) -> Path:
    return Path(os.path.expanduser(setting))


def key_location(given: str | None, tls_key: str | None) -> tuple[Path, bool]:
    """Where this head's key is, and whether a head may make it there. A file the user named
    (--cache-key, FGO_CACHE_KEY, [tool.fgo]) must exist: a typo must not make a key no other
    head has. Otherwise `cache.key` beside the head's TLS key when the cluster speaks TLS
    (teammates are handed both together), else ~/.config/fgo/cache.key; either made by the
    first head that needs it."""
    if given:
        return key_path(given), False
    if tls_key:
        return key_path(tls_key).parent / KEY_NAME, True
    return key_path(DEFAULT_KEY), True


def load_key(path: Path, create: bool = True) -> bytes:
    """The key in PATH; with CREATE a missing one is made first (32 random bytes, mode 0600,
    its directory 0700), atomically, so two heads starting at once end with one key.
    CacheKeyError when it cannot be read, is shorter than 16 bytes, or others may write it
    or anyone may read it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if not create:
            raise CacheKeyError(f"cache key {path} does not exist (copy the heads' key "
                                f"there)") from None
        _create_key(path)
        return load_key(path, create=False)
    except OSError as exc:
        raise CacheKeyError(f"cache key {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheKeyError(f"cache key {path} is not a file")
        if st.st_mode & 0o026:
            raise CacheKeyError(f"cache key {path} is open to others "
                                f"(mode {stat.S_IMODE(st.st_mode):o}): chmod 600 {path}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            key = f.read(1 << 16)
    except OSError as exc:
        raise CacheKeyError(f"cache key {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(key) < MIN_KEY_BYTES:
        raise CacheKeyError(f"cache key {path} holds {len(key)} bytes, fewer than "
                            f"{MIN_KEY_BYTES}")
    return key


def _create_key(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
            try:
                os.link(tmp, path)  # fails if another head made one meanwhile: use theirs
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise CacheKeyError(f"cannot create cache key {path}: {exc.strerror or exc}") from None
