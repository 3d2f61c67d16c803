"""Verification on every build: remote and split compiles checked against the head's own.

fgo's promise is that what it produces is byte-identical to a local compile, and
the head node checks that by hashes on every build, not only under --check (the
idea of reclient's compare mode and icecream's repeat rate):

- a split package whose (compiler series, package, go's action ID, K) has not been
  verified before is also compiled stock on the head node, next to the split
  (`--verify-splits=first`; `always` re-checks every split, `off` none); a small
  ledger remembers what matched, so a warm build verifies nothing twice;
- one early remote compile of every worker (its first small one: a wrongly set up
  worker shows on any compile, and runtime, when it came first, took 6 of a cold etcd
  build's 10 verification seconds) is always recompiled on the head node, and a sampled share of
  the rest (`--verify-rate`) while the head has a core free (fgo.head.headload; the
  report counts the samples a busy head skipped);
- outputs are compared byte for byte as the head received them (a worker's own
  hash is never trusted).

A mismatch fails the build: the link waits for pending verifications and is
refused, the wrong archive's GOCACHE entry is evicted (so a later plain
`go build` recompiles it), the worker is excluded, the package is never split
again with that compiler series, and one line names package, worker and the
first differing symbol (fgo diff's engine).
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from fgo.fileio import write_atomically
from fgo.head.headload import HeadLoad
from fgo.settings import default

SPLIT_MODES = ("first", "always", "off")
# A worker's first check: its first compile of at most this much source, or else its
# FIRST_CHECK_BY-th compile whatever its size.
FIRST_CHECK_MAX_BYTES = 64 << 10
FIRST_CHECK_BY = 4

# local() -> job(): snapshot a compile's inputs now, compile it here later.
LocalJob = Callable[[], Callable[[], Any]]


# ------------------------------------------------------------------ decisions (pure)

def sampled(key: str, rate: float) -> bool:
    """Whether the compile named KEY falls in the sampled share RATE (deterministic, so a
    rerun of the same build samples the same compiles)."""
    if rate <= 0:
        return False
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) < rate * 2 ** 32


def remote_reason(worker: str, verified_workers: set[str], key: str, rate: float,
                  head_busy: bool, source_bytes: int = 0, nth: int = 1) -> str | None:
    """Why a remote compile on WORKER (its NTH, of SOURCE_BYTES) is verified, or None: an
    unverified worker's first small compile, or its FIRST_CHECK_BY-th, always is; a sampled
    one only while the head node has a core free."""
    if worker not in verified_workers and (source_bytes <= FIRST_CHECK_MAX_BYTES
                                           or nth >= FIRST_CHECK_BY):
        return "first of worker"
    if not head_busy and sampled(key, rate):
        return "sampled"
    return None


def split_key(series: str, package: str, inputs_id: str, k: int) -> str:
    return f"{series[:12]} {package} {inputs_id[:20]} K={k}"


def inputs_id(buildid: str, input_shas: dict[str, str]) -> str:
    """What identifies a compile's inputs across builds: go's action ID (the first half of
    -buildid: a hash of the sources, the imports' content IDs, the flags and the compiler),
    else a hash of the input files. Paths alone would not do: go build's work directory,
    which the importcfg names, is new in every build."""
    return buildid.split("/")[0] or inputs_hash(input_shas)


def split_needs_check(mode: str, verified: bool) -> bool:
    """--verify-splits: first (only what the ledger has not seen), always, or off."""
    return mode == "always" or (mode == "first" and not verified)


def inputs_hash(input_shas: dict[str, str]) -> str:
    """One hash over a compile's inputs (path -> sha256)."""
    h = hashlib.sha256()
    for path in sorted(input_shas):
        h.update(f"{path}\0{input_shas[path]}\n".encode())
    return h.hexdigest()


def action_id_prefix(buildid_flag: str) -> str | None:
    """The hex prefix of go's action ID from a compile's `-buildid ACTION/CONTENT` value
    (cmd/internal/buildid.HashToString: base64 of the action hash's first 15 bytes)."""
    action = buildid_flag.split("/")[0]
    if len(action) != 20:
        return None
    try:
        return base64.b64decode(action.replace("-", "+").replace("_", "/")).hex()
    except ValueError:
        return None


def differing_outputs(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    """The output paths whose bytes differ (or that only one side has)."""
    return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))


# ------------------------------------------------------------------ the ledger

class Ledger:
    """Verified split keys and the packages never to split again, per compiler series.

    A JSON file in fgo's cache; read once, written when a build learns something."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        self.verified: set[str] = set(data.get("verified", []))
        self.disabled: dict[str, str] = dict(data.get("disabled", {}))
        self.dirty = False

    def split_allowed(self, series: str, package: str) -> bool:
        return f"{series[:12]} {package}" not in self.disabled

    def is_verified(self, key: str) -> bool:
        return key in self.verified

    def record(self, key: str, matched: bool, series: str, package: str, why: str = "") -> None:
        """Remember an outcome (written by `save`, once per build)."""
        with self.lock:
            if matched:
                self.verified.add(key)
            else:
                self.verified.discard(key)
                self.disabled[f"{series[:12]} {package}"] = why
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(
                {"verified": sorted(self.verified), "disabled": self.disabled}, indent=0).encode())
            self.dirty = False
        except OSError:
            pass  # a ledger we cannot write costs a re-verification next time, nothing more


# ------------------------------------------------------------------ GOCACHE eviction

def evict(gocache: Path, buildid_flag: str) -> list[str]:
    """Remove the GOCACHE entry go stored for the compile with BUILDID_FLAG: its action
    index (`-a`) and the output it names (`-d`). Returns the removed paths."""
    prefix = action_id_prefix(buildid_flag)
    if not prefix:
        return []
    removed = []
    for index in (gocache / prefix[:2]).glob(f"{prefix}*-a"):
        try:
            fields = index.read_text().split()
        except OSError:
            continue
        if len(fields) >= 3:
            out = gocache / fields[2][:2] / f"{fields[2]}-d"
            if out.exists():
                out.unlink()
                removed.append(str(out))
        index.unlink(missing_ok=True)
        removed.append(str(index))
    return removed


# ------------------------------------------------------------------ the verifier

@dataclass
class Mismatch:
    package: str
    worker: str
    kind: str          # "remote", "speculative" or "split"
    symbol: str        # the first differing symbol, or what differs
    outputs: list[str] = field(default_factory=list)
    buildid: str = ""  # the compile's -buildid, to evict its GOCACHE entry

    def line(self) -> str:
        return (f"fgo: verification failed: {self.kind} compile of {self.package} on "
                f"{self.worker} differs from the local compile at {self.symbol}")


@dataclass
class Check:
    package: str
    worker: str
    kind: str
    reason: str
    matched: bool | None = None
    seconds: float = 0.0


def first_symbol(path: str, a: bytes, b: bytes) -> str:
    """What differs first between two archives, named by fgo diff's engine."""
    try:
        from fgo.verify.diff import compare_archives
        d = compare_archives(path, path, data_a=a, data_b=b)
    except Exception as exc:  # an archive diff cannot read: still a mismatch
        return f"{os.path.basename(path)} ({type(exc).__name__})"
    if d.functions:
        return d.functions[0]
    for o in d.objects:
        if o.symbols:
            return o.symbols[0].name
    if d.pkgdef == "differs":
        return "export data (__.PKGDEF)"
    return d.summary or os.path.basename(path)


class Verifier:
    """Runs the head's own compiles beside remote and split ones, one at a time.

    A caller hands over, for each compile it wants checked, the bytes it got back and
    `local`: a function that snapshots what the compile needs (at once, while go
    build's work directory still exists) and returns the job that compiles it here."""

    def __init__(self, rate: float = default("verify_rate"), split_mode: str = "first",
                 ledger: Ledger | None = None,
                 on_exclude: Callable[[str], None] | None = None,
                 head: HeadLoad | None = None) -> None:
        self.rate = rate
        self.head = head or HeadLoad()
        self.skipped_busy = 0  # sampled compiles not checked: the head had no core free
        self.split_mode = split_mode
        self.ledger = ledger
        self.on_exclude = on_exclude or (lambda worker: None)
        self.lock = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fgo-verify")
        self.pending: list[concurrent.futures.Future[None]] = []
        self.verified_workers: set[str] = set()
        self.excluded: set[str] = set()
        self.produced: dict[str, list[str]] = {}   # worker -> -buildid of each remote compile
        self.seen: dict[str, int] = {}             # worker (or its speculative path) -> results
        self.checks: list[Check] = []
        self.mismatches: list[Mismatch] = []
        self.wait_s = 0.0

    # --- what to verify ---

    def after_remote(self, package: str, worker: str, input_shas: dict[str, str],
                     outputs: Callable[[], dict[str, bytes]], buildid: str,
                     local: LocalJob, source_bytes: int = 0, speculative: bool = False) -> None:
        """A remote compile (of SOURCE_BYTES; SPECULATIVE: a speculation taken) came back
        from WORKER: verify it if the policy says so. OUTPUTS reads its outputs (at once:
        go build rewrites them once it has its answer)."""
        key = f"{package} {inputs_id(buildid, input_shas)}"
        # a worker's speculative path (the build ID rewritten, matched by content) is checked
        # once on its own, as a worker is
        path = f"{worker} (speculative)" if speculative else worker
        with self.lock:
            self.produced.setdefault(worker, []).append(buildid)
            self.seen[path] = self.seen.get(path, 0) + 1
            busy = not self.head.core_free() or any(not f.done() for f in self.pending)
            reason = remote_reason(path, self.verified_workers, key, self.rate, busy,
                                   source_bytes, self.seen[path])
            if reason is None:
                self.skipped_busy += busy and path in self.verified_workers \
                    and sampled(key, self.rate)
                return
            self.verified_workers.add(path)
        self._submit(Check(package, worker, "speculative" if speculative else "remote", reason),
                     local(), outputs(), buildid, None, None)

    def split_wanted(self, series: str, package: str) -> bool:
        return self.ledger is None or self.ledger.split_allowed(series, package)

    def after_split(self, series: str, package: str, k: int, workers: str,
                    input_shas: dict[str, str], outputs: dict[str, bytes], buildid: str,
                    local: LocalJob, done: Callable[[bool, str, str], None] | None = None) -> None:
        """A split compile came back with OUTPUTS: compile it stock here if unverified.
        DONE(matched, split_sha256, stock_sha256) is told the outcome."""
        key = split_key(series, package, inputs_id(buildid, input_shas), k)
        verified = self.ledger is not None and self.ledger.is_verified(key)
        if not split_needs_check(self.split_mode, verified):
            return
        self._submit(Check(package, workers, "split", f"K={k}"), local(), outputs, buildid,
                     (series, key), done)

    # --- running and comparing ---

    def _submit(self, check: Check, job: Callable[[], Any], outputs: dict[str, bytes],
                buildid: str, split: tuple[str, str] | None,
                done: Callable[[bool, str, str], None] | None) -> None:
        with self.lock:
            self.checks.append(check)
            self.pending.append(self.pool.submit(self._verify, check, job, outputs, buildid,
                                                 split, done))

    def _verify(self, check: Check, job: Callable[[], Any], outputs: dict[str, bytes],
                buildid: str, split: tuple[str, str] | None,
                done: Callable[[bool, str, str], None] | None) -> None:
        t0 = time.monotonic()
        try:
            local = job()
        except Exception:  # cannot verify here: counted as unverifiable, never as a match
            local = None
        check.seconds = round(time.monotonic() - t0, 3)
        if local is None or not getattr(local, "ok", False):
            return
        theirs = local.outputs
        differ = differing_outputs(outputs, theirs)
        check.matched = not differ
        mismatch = None
        if differ:
            path = next((p for p in differ if p.endswith(".a")), differ[0])
            mismatch = Mismatch(check.package, check.worker, check.kind,
                                first_symbol(path, outputs.get(path, b""), theirs.get(path, b"")),
                                differ, buildid)
            with self.lock:
                self.mismatches.append(mismatch)
                exclude = check.kind != "split" and check.worker not in self.excluded
                self.excluded.add(check.worker)
            if exclude:
                self.on_exclude(check.worker)
        if split and self.ledger is not None:
            series, key = split
            self.ledger.record(key, not differ, series, check.package,
                               f"mismatch at {mismatch.symbol}" if mismatch else "")
        if done is not None:
            archive = next((p for p in outputs if p.endswith(".a")), None)
            sha = (lambda d: hashlib.sha256(d).hexdigest() if d is not None else "")
            done(not differ, sha(outputs.get(archive)) if archive else "",
                 sha(theirs.get(archive)) if archive else "")

    def wait(self) -> list[Mismatch]:
        """Block until every pending verification is done; the mismatches so far."""
        t0 = time.monotonic()
        while True:
            with self.lock:
                pending = [f for f in self.pending if not f.done()]
            if not pending:
                break
            concurrent.futures.wait(pending)
        self.wait_s += time.monotonic() - t0
        with self.lock:
            return list(self.mismatches)

    def suspects(self) -> list[str]:
        """The -buildid of every output not to keep: each mismatch, and everything an
        excluded worker produced in this build (one wrong archive taints its worker)."""
        with self.lock:
            ids = [m.buildid for m in self.mismatches]
            ids += [b for w in sorted(self.excluded) for b in self.produced.get(w, [])]
        return [b for b in dict.fromkeys(ids) if b]

    def close(self) -> None:
        """Finish pending checks and write what the ledger learned."""
        self.pool.shutdown(wait=True, cancel_futures=False)
        if self.ledger is not None:
            self.ledger.save()

    def report(self) -> dict[str, Any]:
        with self.lock:
            checks = list(self.checks)
            return {
                "rate": self.rate, "splits": self.split_mode,
                "skipped_busy": self.skipped_busy,
                "checked": sum(1 for c in checks if c.matched is not None),
                "matched": sum(1 for c in checks if c.matched),
                "unverifiable": sum(1 for c in checks if c.matched is None),
                "mismatched": [asdict(m) for m in self.mismatches],
                "excluded": sorted(self.excluded),
                "seconds": round(sum(c.seconds for c in checks), 3),
                "wait_s": round(self.wait_s, 3),
                "checks": [asdict(c) for c in checks],
            }
