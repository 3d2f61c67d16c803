"""Verification on every build: remote and split compiles checked against other compiles.

fgo's promise is that what it produces is byte-identical to a local compile, and the head
node checks that by hashes on every build, not only under --check (reclient's compare mode,
icecream's repeat rate). fgo.head.checks decides what is checked and where; this module runs
the checks and acts on them:

- a head check compiles the same task on the head from its own store (its inputs
  snapshotted at once: go build may remove its work directory before the check runs), one
  at a time;
- a cross-check sends the same task to another worker, in that worker's idle time, and
  compares the two outputs; when they disagree the head's own compile arbitrates;
- outputs are compared byte for byte as the head received them (a worker's own hash is
  never trusted); a check that cannot run is "unverifiable", never a match, and a worker
  whose first check was unverifiable is checked again.

A mismatch fails the build: the link waits for pending checks and is refused, the wrong
output's GOCACHE entry is evicted (so a later plain `go build` recompiles it), its worker is
excluded and everything it produced this build evicted, a split package is never split
again with that compiler series, and one line names package, worker and the first
differing symbol (fgo diff's engine).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from fgo.head import checks
from fgo.head.headload import HeadLoad
from fgo.head.ledger import Ledger
from fgo.settings import default

SPLIT_MODES = ("first", "always", "off")
CROSS_THREADS = 4   # cross-checks waiting on other workers at once
# A sampled check on the head runs beside the head's own compiles, which go build waits for,
# and was charged the same share of the core (the aws-sdk-go and etcd runs of experiment 8:
# 1-8 s of checks on the head's core, its compiles 20-30% slower than in go's own run). Its
# compiler runs this much nicer than the head: the kernel's weight for nice 19 is 15 against
# 1024 at nice 0, so ~1.5% of the core beside a compile (at 10, its weight 110: ~10%, and
# the one-core head of experiment 8 drew 27-44 s of such checks a build, each taken from
# the head's own compiles), and the whole core when the head waits for remote compiles.
# Only the compiler: a niced Python thread that holds the GIL between its syscalls stalls
# every other thread of the head while the core is busy. What the link waits for (a
# worker's first check due at the link, a split's, a reference drawn at dispatch) runs at
# the head's own priority; a sampled check still running at the link has the core to
# itself then, go build waiting for it.
CHECK_NICE = 19


def _nice_checks() -> None:
    """The check thread's compilers CHECK_NICE below the head (fgo.worker.runner)."""
    from fgo.worker import runner
    runner.nice_children(CHECK_NICE)


# head: snapshot a compile's inputs now -> compile it here later
LocalJob = Callable[[], Callable[[], Any]]
# cross: the worker not to ask -> snapshot now -> compile it on another worker later
CrossJob = Callable[[str], Callable[[], Any]]


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
    kind: str          # remote | speculative | split
    reason: str        # first of worker | sampled | first of inputs | always
    where: str = "head"  # head | cross (the checking worker's address in `checker`)
    checker: str = ""
    matched: bool | None = None
    seconds: float = 0.0
    at_dispatch: bool = False  # its reference compile started when the compile was sent


@dataclass
class _Early:
    """A check drawn when its compile was sent: why, and its reference compile running
    on the head meanwhile (a future of its outputs, or None when it could not run)."""

    reason: str
    reference: concurrent.futures.Future[tuple[dict[str, bytes] | None, float]]


@dataclass
class _Worker:
    """What verification tracks of one worker (or of its speculative path)."""

    compiles: int = 0
    checks: int = 0
    first_pending: bool = True
    first_at: int = 1
    # its latest compile while the first check is still due, ready to check: a worker whose
    # compiles end before its secret pick is checked on that one when the build waits
    held: Callable[[], None] | None = None


def _compile(job: Callable[[], Any]) -> tuple[dict[str, bytes] | None, float]:
    """JOB's outputs (a compile that checks), or None when it could not run; its seconds."""
    t0 = time.monotonic()
    try:
        result = job()
    except Exception:  # cannot verify here: counted as unverifiable, never as a match
        result = None
    seconds = time.monotonic() - t0
    if result is None or not getattr(result, "ok", False):
        return None, seconds
    return result.outputs, seconds


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
    """One build's checks. HEAD_FREE says whether the head has a core free for a check
    (else samples are cross-checked); OTHER_WORKERS whether a worker besides the producer
    can cross-check."""

    def __init__(self, rate: float = default("verify_rate"), split_mode: str = "first",
                 ledger: Ledger | None = None,
                 on_exclude: Callable[[str], None] | None = None,
                 head: HeadLoad | None = None, catch: float | None = None,
                 expected_per_worker: float | None = None,
                 secret: bytes | None = None) -> None:
        self.floor = rate
        self.catch = catch
        self.expected = expected_per_worker      # the build's compiles (all workers)
        self.rate = checks.sample_rate(rate, catch, None)
        self.before_wait: Callable[[], None] = lambda: None
        self.secret = secret or os.urandom(32)
        self.head = head or HeadLoad()
        self.head_free: Callable[[], bool] = self.head.core_free
        self.other_workers: Callable[[str], bool] = lambda worker: False
        self.split_mode = split_mode
        self.ledger = ledger
        self.on_exclude = on_exclude or (lambda worker: None)
        self.lock = threading.Lock()
        self.head_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fgo-verify")
        self.idle_pool = concurrent.futures.ThreadPoolExecutor(   # sampled: in idle time
            1, thread_name_prefix="fgo-verify-idle", initializer=_nice_checks)
        self.cross_pool = concurrent.futures.ThreadPoolExecutor(CROSS_THREADS,
                                                                thread_name_prefix="fgo-cross")
        self.pending: list[concurrent.futures.Future[None]] = []
        self.workers: dict[str, _Worker] = {}
        self.excluded: set[str] = set()
        self.produced: dict[str, list[str]] = {}   # worker -> -buildid of each remote compile
        self.checks: list[Check] = []
        self.early: dict[str, _Early] = {}         # compile key -> its check drawn at dispatch
        self.mismatches: list[Mismatch] = []
        self.wait_s = 0.0

    @property
    def remote_compiles(self) -> int:
        """Remote compiles back so far, every worker's (speculative paths included)."""
        return sum(w.compiles for w in self.workers.values())

    @property
    def remote_checks(self) -> int:
        """Checks started of those."""
        return sum(w.checks for w in self.workers.values())

    def size_known(self, workers: int) -> None:
        """The build runs on WORKERS workers: the rate that meets the catch target."""
        if self.expected and workers:
            self.rate = checks.sample_rate(self.floor, self.catch, self.expected / workers)

    # --- what to verify ---

    def at_dispatch(self, package: str, worker: str, input_shas: dict[str, str],
                    buildid: str, expected_s: float, local: LocalJob) -> str | None:
        """A compile expected to take EXPECTED_S was just sent to WORKER: whether it is
        checked from now (checks.dispatch_reason): its reference compile (LOCAL) starts on
        the head now, beside the remote one, and `after_remote` compares the two. The draw's
        key, for `drop_early` should no remote result come; None when not drawn."""
        if expected_s < checks.AT_DISPATCH_S:  # most compiles: no key to hash, no draw
            return None
        key = f"{package} {checks.inputs_id(buildid, input_shas)}"
        with self.lock:
            drawn = len(self.early)
            reason = checks.dispatch_reason(expected_s, checks.secret_draw(self.secret, key),
                                            self.rate, self.remote_checks + drawn,
                                            self.remote_compiles + drawn + 1)
        if reason is None:
            return None
        try:
            job = local()   # its inputs read now, as a check after the result would
        except OSError:
            return None
        reference = self.head_pool.submit(_compile, job)
        with self.lock:
            self.early[key] = _Early(reason, reference)
        return key

    def drop_early(self, key: str) -> None:
        """The compile drawn under KEY at dispatch gives no remote result to check (the
        head's run of it won, it failed, or it falls back): its reference is not needed."""
        with self.lock:
            early = self.early.pop(key, None)
        if early is not None:
            early.reference.cancel()   # if it has not started yet

    def after_remote(self, package: str, worker: str, input_shas: dict[str, str],
                     outputs: Callable[[], dict[str, bytes]], buildid: str,
                     local: LocalJob, source_bytes: int = 0, speculative: bool = False,
                     cross: CrossJob | None = None) -> None:
        """A remote compile (SPECULATIVE: a speculation taken) came back from WORKER: check
        it if the policy says so. OUTPUTS reads its outputs (at once: go build rewrites
        them once it has its answer); LOCAL and CROSS make the checking compiles."""
        key = f"{package} {checks.inputs_id(buildid, input_shas)}"
        # a worker's speculative path (the build ID rewritten, matched by content) has its
        # own first check, as a worker does
        path = f"{worker} (speculative)" if speculative else worker
        with self.lock:
            self.produced.setdefault(worker, []).append(buildid)
            state = self.workers.get(path)
            if state is None:
                state = self.workers[path] = _Worker(first_at=checks.first_check_at(
                    self.secret, path))
            state.compiles += 1
            early = self.early.pop(key, None) if not speculative else None
            if early is not None:
                check = self._early_check(state, package, worker, early)
            else:
                reason = checks.check_reason(state.first_pending, state.compiles,
                                             state.first_at, checks.secret_draw(self.secret, key),
                                             self.rate, self.remote_checks, self.remote_compiles)
                if reason is None:
                    if state.first_pending:   # read now: go build removes its work dir and
                        state.held = self._holder(package, worker, path, speculative, local,
                                                  outputs, buildid)   # rewrites its outputs
                    return
                state.held = None
                where = checks.where_to_check(reason, self.head_free(),
                                              cross is not None and self.other_workers(worker))
                state.checks += 1
                if reason == "first of worker":
                    state.first_pending = False  # again if this one is unverifiable
                check = Check(package, worker, "speculative" if speculative else "remote",
                              reason, where)
        if early is not None:
            self._submit_compare(check, early, outputs(), buildid, path)
        elif check.where == "cross" and cross is not None:
            self._submit_cross(check, cross(worker), local(), outputs(), buildid, path)
        else:
            self._submit_head(check, local(), outputs(), buildid, None, None, path,
                              idle=True)

    def _early_check(self, state: _Worker, package: str, worker: str, early: _Early) -> Check:
        """The check of a compile drawn at dispatch, now that it is back (under self.lock):
        it is the worker's first check, too, when it falls on or past its pick."""
        first = state.first_pending and state.compiles >= state.first_at
        state.checks += 1
        state.held = None
        if first:
            state.first_pending = False
        return Check(package, worker, "remote", "first of worker" if first else early.reason,
                     "head", at_dispatch=True)

    def _submit_compare(self, check: Check, early: _Early, outputs: dict[str, bytes],
                        buildid: str, path: str) -> None:
        with self.lock:
            self.checks.append(check)
            self.pending.append(self.cross_pool.submit(
                self._compare_early, check, early, outputs, buildid, path))

    def _compare_early(self, check: Check, early: _Early, outputs: dict[str, bytes],
                       buildid: str, path: str) -> None:
        reference, seconds = early.reference.result()
        check.seconds = round(seconds, 3)
        if reference is None:
            self._unverifiable(path)
            return
        self._judge(check, outputs, reference, buildid, None, None)

    def _holder(self, package: str, worker: str, path: str, speculative: bool,
                local: LocalJob, outputs: Callable[[], dict[str, bytes]],
                buildid: str) -> Callable[[], None] | None:
        """The check of this compile, its inputs and outputs read now (by the link, go build
        has removed the work directory they were in); None if they cannot be read."""
        try:
            job, theirs = local(), outputs()
        except OSError:
            return None

        def check_now() -> None:
            check = Check(package, worker, "speculative" if speculative else "remote",
                          "first of worker (its last compile: it did fewer than its pick)",
                          "head")
            self._submit_head(check, job, theirs, buildid, None, None, path)
        return check_now

    def _first_checks_due(self) -> None:
        """Every worker that stopped short of its first check's secret pick is checked on
        its latest compile, on the head (the reference), before anything is linked."""
        with self.lock:
            due = [(state, state.held) for state in self.workers.values()
                   if state.first_pending and state.held is not None]
            for state, _ in due:
                state.held, state.first_pending = None, False
                state.checks += 1
        for _, check_now in due:
            check_now()

    def split_wanted(self, series: str, package: str) -> bool:
        return self.ledger is None or self.ledger.split_allowed(series, package)

    def after_split(self, series: str, package: str, k: int, workers: str,
                    input_shas: dict[str, str], outputs: dict[str, bytes], buildid: str,
                    local: LocalJob, done: Callable[[bool, str, str], None] | None = None) -> None:
        """A split compile came back with OUTPUTS: compile it stock here if the ledger has
        not seen its inputs, or it falls in the sample. DONE(matched, split_sha256,
        stock_sha256) is told the outcome."""
        key = checks.split_key(series, package, checks.inputs_id(buildid, input_shas), k)
        verified = self.ledger is not None and self.ledger.is_verified(key)
        reason = checks.split_needs_check(self.split_mode, verified,
                                          checks.secret_draw(self.secret, key), self.rate)
        if reason is None:
            return
        self._submit_head(Check(package, workers, "split", f"{reason}, K={k}"), local(),
                          outputs, buildid, (series, key), done, None)

    # --- running and comparing ---

    def _submit_head(self, check: Check, job: Callable[[], Any], outputs: dict[str, bytes],
                     buildid: str, split: tuple[str, str] | None,
                     done: Callable[[bool, str, str], None] | None, path: str | None,
                     idle: bool = False) -> None:
        """CHECK on the head: IDLE (a sampled one, the link not waiting yet) at CHECK_NICE."""
        pool = self.idle_pool if idle else self.head_pool
        with self.lock:
            self.checks.append(check)
            self.pending.append(pool.submit(
                self._check_on_head, check, job, outputs, buildid, split, done, path))

    def _submit_cross(self, check: Check, job: Callable[[], Any], head_job: Callable[[], Any],
                      outputs: dict[str, bytes], buildid: str, path: str) -> None:
        with self.lock:
            self.checks.append(check)
            self.pending.append(self.cross_pool.submit(
                self._cross_check, check, job, head_job, outputs, buildid, path))

    def _check_on_head(self, check: Check, job: Callable[[], Any], outputs: dict[str, bytes],
                       buildid: str, split: tuple[str, str] | None,
                       done: Callable[[bool, str, str], None] | None, path: str | None) -> None:
        theirs = self._run(check, job)
        if theirs is None:
            self._unverifiable(path)
            return
        self._judge(check, outputs, theirs, buildid, split, done)

    def _judge(self, check: Check, outputs: dict[str, bytes], theirs: dict[str, bytes],
               buildid: str, split: tuple[str, str] | None,
               done: Callable[[bool, str, str], None] | None) -> None:
        """CHECK's outcome: OUTPUTS (the compile checked) against THEIRS (the reference)."""
        differ = checks.differing_outputs(outputs, theirs)
        check.matched = not differ
        mismatch = self._mismatch(check, check.worker, outputs, theirs, buildid) if differ else None
        if split and self.ledger is not None:
            series, key = split
            self.ledger.record(key, not differ, series, check.package,
                               f"mismatch at {mismatch.symbol}" if mismatch else "")
        if done is not None:
            archive = next((p for p in outputs if p.endswith(".a")), None)
            sha = (lambda d: hashlib.sha256(d).hexdigest() if d is not None else "")
            done(not differ, sha(outputs.get(archive)) if archive else "",
                 sha(theirs.get(archive)) if archive else "")

    def _cross_check(self, check: Check, job: Callable[[], Any], head_job: Callable[[], Any],
                     outputs: dict[str, bytes], buildid: str, path: str) -> None:
        result = None
        t0 = time.monotonic()
        try:
            result = job()
        except Exception:  # noqa: BLE001  (no other worker took it: the head checks it)
            result = None
        check.seconds = round(time.monotonic() - t0, 3)
        if result is None or not getattr(result, "ok", False) or result.exit != 0:
            check.where = "head"
            self._check_on_head(check, head_job, outputs, buildid, None, None, path)
            return
        check.checker = result.worker
        if not checks.differing_outputs(outputs, result.outputs):
            check.matched = True
            return
        # two workers disagree: the head's own compile says who is wrong
        reference = self._run(check, head_job)
        if reference is None:
            self._unverifiable(path)
            return
        wrong = checks.arbiter(not checks.differing_outputs(outputs, reference),
                               not checks.differing_outputs(result.outputs, reference))
        check.matched = "producer" not in wrong
        if "producer" in wrong:
            self._mismatch(check, check.worker, outputs, reference, buildid)
        if "checker" in wrong:
            self._mismatch(Check(check.package, result.worker, check.kind, "cross-check"),
                           result.worker, result.outputs, reference, "")

    def _run(self, check: Check, job: Callable[[], Any]) -> dict[str, bytes] | None:
        """JOB's outputs (the compile that checks), or None when it could not run."""
        outputs, seconds = _compile(job)
        check.seconds = round(check.seconds + seconds, 3)
        return outputs

    def _unverifiable(self, path: str | None) -> None:
        """A check that could not run proves nothing: the worker's first check stays due."""
        if path is None:
            return
        with self.lock:
            state = self.workers.get(path)
            if state is not None:
                state.first_pending = True

    def _mismatch(self, check: Check, worker: str, outputs: dict[str, bytes],
                  reference: dict[str, bytes], buildid: str) -> Mismatch:
        differ = checks.differing_outputs(outputs, reference)
        path = next((p for p in differ if p.endswith(".a")), differ[0])
        mismatch = Mismatch(check.package, worker, check.kind,
                            first_symbol(path, outputs.get(path, b""), reference.get(path, b"")),
                            differ, buildid)
        with self.lock:
            self.mismatches.append(mismatch)
            exclude = check.kind != "split" and worker not in self.excluded
            if check.kind != "split":
                self.excluded.add(worker)
        if exclude:
            self.on_exclude(worker)
        return mismatch

    def wait(self) -> list[Mismatch]:
        """Block until every pending check is done; the mismatches so far."""
        t0 = time.monotonic()
        self._first_checks_due()
        self.before_wait()
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
        with self.lock:   # drawn at dispatch, never compared: the build is over
            unused, self.early = list(self.early.values()), {}
        for e in unused:
            e.reference.cancel()
        self.head_pool.shutdown(wait=True, cancel_futures=False)
        self.idle_pool.shutdown(wait=True, cancel_futures=False)
        self.cross_pool.shutdown(wait=True, cancel_futures=False)
        if self.ledger is not None:
            self.ledger.save()

    def report(self) -> dict[str, Any]:
        with self.lock:
            done = list(self.checks)
            workers = {w: asdict(s) for w, s in self.workers.items()}
        remote = [c for c in done if c.kind != "split"]
        compiles = sum(s["compiles"] for s in workers.values())
        q = self.catch or 0.05
        return {
            "rate": self.rate, "rate_floor": self.floor, "splits": self.split_mode,
            "checked": sum(1 for c in done if c.matched is not None),
            "matched": sum(1 for c in done if c.matched),
            "unverifiable": sum(1 for c in done if c.matched is None),
            "head_checks": sum(1 for c in done if c.where == "head"),
            "cross_checks": sum(1 for c in done if c.where == "cross"),
            "at_dispatch": sum(1 for c in done if c.at_dispatch),
            "remote_compiles": compiles,
            "remote_checked": sum(1 for c in remote if c.matched is not None),
            "catch": {"q": q, "confidence_needed": checks.CONFIDENCE,
                      "checks_needed": checks.checks_needed(q),
                      "workers": {w: {"compiles": s["compiles"], "checks": s["checks"],
                                      "probability": round(
                                          checks.catch_probability(q, s["checks"]), 4)}
                                  for w, s in sorted(workers.items())}},
            "mismatched": [asdict(m) for m in self.mismatches],
            "excluded": sorted(self.excluded),
            "seconds": round(sum(c.seconds for c in done), 3),
            "wait_s": round(self.wait_s, 3),
            "checks": [asdict(c) for c in done],
        }
