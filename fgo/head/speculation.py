"""Pipelined compilation: dependents start from a package's early export data.

go build stays the driver, so it asks for a package's compile only after every import's
compile has returned. A dependent needs only its imports' export data, which the patched
compiler writes before its backend runs (`-fgoexport`, fgo.compiler.early_export). fgo
answers go build from work it started earlier:

  - `go build -n` with the build's flags predicts every compile (fgo.planner.prediction);
  - a remote compile runs with -fgoexport and its worker sends the export data while the
    backend still runs (fgo.worker.service); a speculative compile does too, so a chain
    of speculations can run ahead of go build;
  - once every import of a predicted compile has export data, it is started on a free
    worker (critical-path order), niced and in threads of its own on the worker, so that
    it never holds up a real compile;
  - go build's real request takes the speculative result only if its content key
    (normalized command line, sources, the imports' export data) is the speculation's;
    the result's build ID is then rewritten in place to the one go asked for, as go's own
    updateBuildID does. On any difference the speculation is discarded and the compile
    runs as usual: a misprediction costs idle worker time, never a wrong output (and hits
    are verified like remote compiles).

The decisions are pure functions at the top; `Speculator` is the I/O around them.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import os
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fgo import compilecall, wire
from fgo.blobs import Blob, BlobIndex
from fgo.goarchive import export_data
from fgo.head import policy
from fgo.head.action import CompileAction, Outcome
from fgo.head.exports import Export, Exports
from fgo.head.pool import WorkerPool
from fgo.head.tasks import Tasks, head_job
from fgo.planner import prediction
from fgo.planner.prediction import Prediction
from fgo.report.record import ActionRecord
from fgo.settings import default
from fgo.wire import Cancel, CompileResult, Promote

_ID_CHARS = string.ascii_letters + string.digits + "-_"
_WORK_DIR = re.compile(r"^(.*)/b\d+/[^/]+$")


# ------------------------------------------------------------------ decisions (pure)

MIN_THREADS = 4  # default on from here (and > 1 host)


def pipeline_wanted(flag: bool | None, hosts: int, threads: int) -> bool:
    """--pipeline/--no-pipeline, else on where it pays: more than one worker host (on one
    host the speculative compiles only take cores go build's own would use) and at least
    MIN_THREADS worker threads. Below that go build's own ready queue keeps the workers
    nearly busy (experiment 7 part 3, the head's slot and one single-core host: 1.03x,
    0.98x and 0.97x in three files, their pairs 0.95-1.07x, and no gain in the model
    checked against them; 0.92x on two hosts sharing the head's core, with an older head).
    Above it the
    gain is small: the model checked against fgo's pipelined builds gives aws-sdk-go
    2-4% on 2-8 DAS-5 nodes and etcd none (experiments/results/das5_scale.json,
    `pipelined_fgo_s` against `plain_s`)."""
    return flag if flag is not None else hosts > 1 and threads >= MIN_THREADS


# The one file an earlier action makes that a speculation can read: the build's PGO profile
# (`-pgo=auto` with a default.pgo: one preprofile action for the whole build, so one path,
# learned from the first real compile that names it).
PGO_PROFILE = "$WORK/b/pgo.preprofile"


def not_speculable(pred: Prediction) -> str | None:
    """Why PRED cannot be compiled ahead of go build, or None."""
    if set(pred.work_inputs) - {PGO_PROFILE}:
        return "reads files an earlier action makes (cgo, asm)"
    if any(a in ("-asmhdr", "-linkobj") or a.startswith(("-asmhdr=", "-linkobj="))
           for a in pred.argv):
        return "writes more than its archive"
    return None


def made_by_build(pred: Prediction) -> set[str]:
    """What PRED waits for: the imports whose archives this build makes ($WORK), for their
    export data must come from this build (the others' archives exist already), and the
    build's PGO profile (PGO_PROFILE) if it reads it."""
    return {imp for imp, file in pred.import_files if file.startswith("$WORK")} \
        | ({PGO_PROFILE} & set(pred.work_inputs))


class ReadyQueue:
    """The predicted compiles that can start, highest PRIORITY first: speculable, neither
    started nor asked for by go build (`take`n), and every import this build makes has
    export data (`exported`). Kept up to date per event, not recomputed over the whole plan
    (which cost the head seconds of CPU on etcd)."""

    def __init__(self, preds: Mapping[str, Prediction], priority: Mapping[str, float]) -> None:
        self.waiting = {pkg: made_by_build(pred) for pkg, pred in preds.items()
                        if not_speculable(pred) is None}
        self.dependents: dict[str, list[str]] = {}
        for pkg, needs in self.waiting.items():
            for imp in needs:
                self.dependents.setdefault(imp, []).append(pkg)
        self.priority = priority
        self.taken: set[str] = set()
        self.heap = [(-priority.get(p, 0.0), p) for p, needs in self.waiting.items() if not needs]
        heapq.heapify(self.heap)

    def exported(self, package: str) -> None:
        """PACKAGE's export data is there."""
        for d in self.dependents.get(package, ()):
            needs = self.waiting[d]
            if package in needs:
                needs.discard(package)
                if not needs:
                    heapq.heappush(self.heap, (-self.priority.get(d, 0.0), d))

    def take(self, package: str) -> None:
        """PACKAGE was started, or go build asked for it: never offer it again."""
        self.taken.add(package)

    def next(self) -> str | None:
        """The ready compile of highest priority (still offered until taken), or None."""
        while self.heap and self.heap[0][1] in self.taken:
            heapq.heappop(self.heap)
        return self.heap[0][1] if self.heap else None


def priorities(preds: Mapping[str, Prediction], cost: Mapping[str, float]) -> dict[str, float]:
    """Each compile's bottom level: its COST plus the costliest chain of dependents after
    it (the critical-path priority of list scheduling). A plain pass in dependency order,
    not networkx: importing that was 0.1-0.25 s of a pipelined head's CPU per build."""
    dependents: dict[str, list[str]] = {pkg: [] for pkg in preds}
    for pkg, pred in preds.items():
        for imp in set(pred.imports):
            if imp in dependents and imp != pkg:
                dependents[imp].append(pkg)
    level: dict[str, float] = {}
    for pkg in _dependents_first(dependents):
        level[pkg] = cost.get(pkg, 1.0) + max((level[d] for d in dependents[pkg]), default=0.0)
    return level


def _dependents_first(dependents: Mapping[str, list[str]]) -> list[str]:
    """The packages, each after all its DEPENDENTS (Kahn's order on the reversed graph).
    A cycle (go refuses to build one) leaves its members out, as networkx refused it."""
    waiting = {pkg: len(ds) for pkg, ds in dependents.items()}
    imports: dict[str, list[str]] = {pkg: [] for pkg in dependents}
    for pkg, ds in dependents.items():
        for d in ds:
            imports[d].append(pkg)
    order = [pkg for pkg, n in waiting.items() if n == 0]
    for pkg in order:  # grows while read
        for imp in imports[pkg]:
            waiting[imp] -= 1
            if waiting[imp] == 0:
                order.append(imp)
    return order


def placeholder_buildid() -> str:
    """A -buildid for a speculative compile: go's form (action ID "/" itself, 20 characters
    each), unlikely to occur anywhere else in the output."""
    half = "fgo" + "".join(secrets.choice(_ID_CHARS) for _ in range(17))
    return f"{half}/{half}"


def head_start(requested: float, started: float, took: float) -> float:
    """How much earlier a hit's compile started than go build asked for it (at REQUESTED):
    at most the compile's own time TOOK. Not time saved: the build's wall time shows that,
    measured against a build without pipelining."""
    return max(0.0, min(took, requested - started))


def work_dir(output: str) -> str | None:
    """go build's WORK dir from a compile's -o ($WORK/bNNN/_pkg_.a)."""
    m = _WORK_DIR.match(output)
    return m[1] if m else None


# ------------------------------------------------------------------ state

@dataclass
class Speculation:
    package: str
    parts: tuple[str, str, str]        # prediction.key_parts of what it compiles
    output: str                        # its -o
    buildid: str                       # the placeholder it was compiled with
    worker: str
    started: float
    future: concurrent.futures.Future[Any]
    ended: float | None = None
    outcome: str = "running"           # hit | miss | failed | unused
    why: str = ""
    head_start_s: float = 0.0          # how much earlier than go asked it started (a hit)
    task_id: str = ""                  # on its worker, for a Cancel


class Speculator:
    """Speculative compiles of one build on its POOL's free worker threads (TASKS builds
    them, BLOBS hashes their inputs). None for POOL: a speculator that only learns."""

    def __init__(self, pool: WorkerPool | None, tasks: Tasks | None, blobs: BlobIndex | None,
                 workdir: str, forced: bool | None = None,
                 task_timeout: float = default("timeout")) -> None:
        self.pool = pool
        self.tasks = tasks
        self.blobs = blobs
        self.task_timeout = task_timeout
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.exports = Exports(self.dir)
        self.forced = forced
        self.preds: dict[str, Prediction] = {}
        self.queue = ReadyQueue({}, {})
        self.active = False                    # a plan, and pipeline_wanted for the workers
        self.decided = False                   # the workers known: active is final
        self.plan_error = ""
        self._start_plan: Callable[[], None] | None = None  # until speculation is wanted
        self.cond = threading.Condition()
        self.specs: dict[str, Speculation] = {}
        self.requested: set[str] = set()
        self.env: dict[str, str] | None = None  # go build's tool environment
        self.pgo: str | None = None             # the build's PGO profile (PGO_PROFILE)
        self.closed = False
        self.not_speculated: Counter[str] = Counter()  # why real requests had none
        self.launcher = Launcher(pool, tasks, blobs, self.exports, self.dir, self.poke)
        self._thread = threading.Thread(target=self._loop, name="fgo-speculator", daemon=True)
        self._thread.start()

    # --- set up ---

    def set_plan(self, preds: Mapping[str, Prediction] | None, error: str = "") -> None:
        """The build's predicted compiles (None: none could be had, for ERROR)."""
        cost = {pkg: float(sum(_size(p) for p in pred.sources)) or 1.0
                for pkg, pred in (preds or {}).items()}
        queue = ReadyQueue(preds or {}, priorities(preds or {}, cost))
        with self.cond:
            self.preds = dict(preds or {})
            self.queue = queue
            for pkg in [*self.requested, *self.specs]:
                queue.take(pkg)
            for pkg in self.exports.packages():
                queue.exported(pkg)
            self.plan_error = error
            self.cond.notify_all()

    def plan_when_wanted(self, start: Callable[[], None]) -> None:
        """Call START (which reads go's plan) now if --pipeline forced it, else once the
        workers make speculation worth it: a build it cannot help pays nothing for a plan
        (`go build -n` costs a cold etcd build ~1.5 s of the head's CPU)."""
        with self.cond:
            if not (self.forced or self.active):
                self._start_plan = start
                return
        start()

    def workers_known(self, hosts: int, threads: int) -> None:
        """The pool learned its workers: turn speculation on if it can help."""
        with self.cond:
            self.active = pipeline_wanted(self.forced, hosts, threads)
            self.decided = True
            start = self._start_plan if self.active else None
            if self.active:
                self._start_plan = None
            self.cond.notify_all()
        if start is not None:
            start()

    @property
    def early_export(self) -> bool:
        """Whether real compiles should send their export data early."""
        return self.active and not self.closed

    # --- what the executors tell it ---

    def request(self, package: str, env: dict[str, str]) -> None:
        """go build asked for PACKAGE's compile: never start a speculation for it now."""
        with self.cond:
            self.requested.add(package)
            self.queue.take(package)
            if self.env is None:
                self.env = dict(env)

    def poke(self) -> None:
        """A worker thread came free, or export data arrived: look for a compile to start."""
        if self._idle:  # nothing to start: every compile's completion pokes
            return
        with self.cond:
            self.cond.notify_all()

    def export_ready(self, package: str, data: bytes, speculative: bool = False,
                     early: bool = True, at: float | None = None, split: bool = False) -> None:
        """PACKAGE's export data arrived (any thread, the event loop included)."""
        if self._idle:
            return
        self.exports.arrived(package, data, speculative, early, at, split)
        self.poke()

    def archive_written(self, package: str, archive: str, result: Any = None) -> None:
        """A real compile of PACKAGE wrote ARCHIVE (RESULT: the remote compile's)."""
        if self._idle:
            return
        self.exports.archive_written(package, archive, result)
        self.poke()

    @property
    def _idle(self) -> bool:
        """No speculation will run (the workers known make it not worth it): an archive's
        export data need not be read, hashed and kept (~0.6 ms of the head's CPU a
        compile). Until the workers are known, it is kept, as what comes first is what
        the most compiles import."""
        return self.decided and not self.active and not self.forced

    # --- go build's request ---

    def wants(self, package: str) -> bool:
        """Whether a request for PACKAGE should be matched against a speculation (one ran,
        or the build's PGO profile is still to be learned from a request)."""
        with self.cond:
            return self.active and (package in self.specs or self.pgo is None)

    def take(self, action: CompileAction) -> Outcome | None:
        """A matching speculation's result for ACTION (hashed), or None to compile as usual."""
        rec = action.record
        if not self.active:  # (nothing was speculated: no bookkeeping either)
            with self.cond:
                self.not_speculated["pipelining off"] += 1
            return None
        call = action.parse()
        profile = compilecall.flag_value(call.args, "-pgoprofile")
        with self.cond:
            spec = self.specs.get(action.package)
            if profile and self.pgo is None:  # now speculations that read it may start
                self.pgo = compilecall.absolute(call.cwd, profile)
                self.queue.exported(PGO_PROFILE)
                self.cond.notify_all()
        importcfg = Path(call.importcfg).read_text() if call.importcfg else ""
        exports = self.exports.of_importcfg(importcfg)
        if spec is None:
            rec.speculation = {"outcome": "none", "why": self._not_speculated(action.package)}
            return None
        try:
            parts = request_parts(action, importcfg, exports)
        except (prediction.PredictError, KeyError, OSError, ValueError) as exc:
            return self._discard(spec, "miss", f"request not keyed: {exc}", rec)
        why = prediction.differs(spec.parts, parts)
        if why:
            return self._discard(spec, "miss", why, rec)
        self.launcher.promote(spec)
        try:
            result = wire.decode(spec.future.result(timeout=self.task_timeout), CompileResult)
        except Exception as exc:  # noqa: BLE001  (lost worker, cancelled, timed out, protocol)
            return self._discard(spec, "failed", f"{type(exc).__name__}: {exc}", rec)
        _release(spec)
        if not result.ok or result.exit != 0 or spec.output not in result.outputs:
            return self._discard(spec, "failed", result.reason or f"exit {result.exit}", rec)
        return self._hit(spec, result, action)

    def _hit(self, spec: Speculation, result: CompileResult, action: CompileAction) -> Outcome:
        """SPEC's RESULT answers ACTION: written where go expects it with go's build ID by
        the completion, and verified like a remote compile."""
        call = action.parse()
        out = compilecall.absolute(call.cwd, compilecall.flag_value(call.args, "-o") or "")
        took = (spec.ended or time.time()) - spec.started
        spec.outcome = "hit"
        spec.head_start_s = round(head_start(action.t0, spec.started, took), 4)
        action.record.speculation = {"outcome": "hit", "started": spec.started,
                                     "ended": spec.ended, "head_start_s": spec.head_start_s}
        inputs = action.inputs or {}
        assert self.tasks is not None
        task = self.tasks.whole(call, action.request.env, inputs)
        return Outcome(replace(result, outputs={out: result.outputs[spec.output]}),
                       "speculative", spec.worker, task=task, local_job=head_job(task, inputs),
                       cross_job=self.tasks.cross_job(
                           call, action.request.env, inputs,
                           policy.cross_check_deadline(took, self.task_timeout)),
                       speculative=(spec.buildid, action.buildid))

    def close(self) -> None:
        """go build ended: what still runs is not waited for."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
            specs = list(self.specs.values())
        for spec in specs:
            if spec.outcome == "running":
                spec.outcome = "unused"
                self.launcher.cancel(spec)
                _release(spec)

    def report(self) -> dict[str, Any]:
        with self.cond:
            specs = list(self.specs.values())
            preds = dict(self.preds)
        return speculation_report(specs, preds, self.exports, self.active, self.plan_error,
                                  dict(self.not_speculated))

    # --- starting speculations (the speculator's thread) ---

    def _loop(self) -> None:
        while True:
            with self.cond:
                while self._idle and not self.closed:
                    self.cond.wait()  # until workers that make it worth it join, or close
                if not (self.closed or self.exports.pending()):
                    self.cond.wait(0.5)  # woken by export data, a free thread, the plan
                if self.closed:
                    return
            fresh = self.exports.drain()
            with self.cond:
                for package in fresh:
                    self.queue.exported(package)
            try:
                self._start_ready()
            except Exception:  # noqa: BLE001  (a speculation is only ever an optimization)
                pass

    def _start_ready(self) -> None:
        while True:
            with self.cond:
                if self.closed or not self.active or not self.env:
                    return
                package = self.queue.next()
            if package is None or self.pool is None or self.pool.free_threads() <= 0 \
                    or not self._start(package):
                return

    def _start(self, package: str) -> bool:
        """Start PACKAGE's speculation; False if there was no worker for it."""
        pred = self.preds[package]
        with self.cond:
            env = dict(self.env or {})
            pgo = self.pgo or ""
        spec = self.launcher.start(package, pred, env, pgo)
        if spec is None:
            return False
        with self.cond:
            self.queue.take(package)
            self.specs[package] = spec
            if package in self.requested and spec.outcome == "running":
                spec.outcome, spec.why = "unused", "asked for while starting"
        if spec.outcome == "unused":
            self.launcher.cancel(spec)
        return True

    def _discard(self, spec: Speculation, outcome: str, why: str, rec: ActionRecord) -> None:
        spec.outcome, spec.why = outcome, why
        self.launcher.cancel(spec)
        _release(spec)
        rec.speculation = {"outcome": outcome, "why": why, "started": spec.started}

    def _not_speculated(self, package: str) -> str:
        with self.cond:
            pred = self.preds.get(package)
            if not self.active:
                why = "pipelining off"
            elif pred is None:
                why = "not predicted"
            else:
                why = not_speculable(pred) or "asked for before its imports' export data"
            self.not_speculated[why] += 1
        return why


class Launcher:
    """Starts speculations on the POOL's free worker threads and sees them end."""

    def __init__(self, pool: WorkerPool | None, tasks: Tasks | None, blobs: BlobIndex | None,
                 exports: Exports, workdir: Path, ended: Callable[[], None]) -> None:
        self.pool = pool
        self.tasks = tasks
        self.blobs = blobs
        self.exports = exports
        self.dir = workdir
        self.ended = ended                     # told when one ends (a thread came free)
        self._seq = 0
        self._lock = threading.Lock()

    def start(self, package: str, pred: Prediction, env: dict[str, str], pgo: str
              ) -> Speculation | None:
        """PACKAGE's speculation, started; a failed one if it cannot be speculated; None if
        no worker thread is free."""
        assert self.pool is not None and self.tasks is not None
        with self._lock:
            self._seq += 1
            workdir = self.dir / f"b{self._seq}"
        buildid = placeholder_buildid()
        try:
            imports = {imp: e for imp in made_by_build(pred) - {PGO_PROFILE}
                       if (e := self.exports.get(imp)) is not None}
            call = speculative_call(pred, imports, workdir, pgo, buildid)
            inputs = _hash(self.blobs, call)
            export_sha = {imp: e.sha for imp, e in imports.items()}
            for imp, file in pred.import_files:
                if imp not in export_sha:
                    export_sha[imp] = self.exports.of_file(file)[0]
            parts = prediction.key_parts(
                pred, lambda p: inputs[pgo if p == PGO_PROFILE else p].sha, export_sha)
            address = self.pool.choose_speculative({b.sha: b.size for b in inputs.values()})
        except Exception as exc:  # noqa: BLE001  (it cannot be speculated: go build asks anyway)
            return Speculation(package, ("", "", ""), "", buildid, "", time.time(),
                               _failed_future(exc), ended=time.time(), outcome="failed",
                               why=f"not started: {type(exc).__name__}: {exc}")
        if address is None:
            return None
        task, sent = self.tasks.for_worker(address, call, env, inputs, now=False)
        task = replace(task, deliver=False, early_export=True, speculative=True)
        future = self.pool.submit(address, wire.OP_COMPILE, task, on_stream=lambda r: (
            self.exports.arrived(package, r.data, speculative=True, at=r.at), self.ended()))
        spec = Speculation(package, parts, call.outputs[0] if len(call.outputs) == 1 else "",
                           buildid, address, time.time(), future, task_id=task.task_id)
        needs = [b.sha for b in inputs.values()]
        future.add_done_callback(lambda f: self._ended(spec, f, sent, needs))
        return spec

    def _ended(self, spec: Speculation, future: concurrent.futures.Future[Any],
               sent: list[str], needs: list[str]) -> None:
        spec.ended = time.time()
        result: CompileResult | None = None
        if not future.cancelled() and future.exception() is None:
            try:
                result = wire.decode(future.result(), CompileResult)
            except wire.ProtocolMismatch:
                result = None
        ok = result is not None and result.ok
        if self.pool is not None:
            self.pool.finished(spec.worker, sent, needs if ok else [], speculative=True)
        if result is not None and ok:
            self.exports.timed(spec.package, True, result)
            if result.exit == 0 and spec.output in result.outputs:
                self.exports.arrived(spec.package, export_data(result.outputs[spec.output]),
                                     speculative=True, early=False)
        if spec.outcome != "running":  # missed or unused before it ended
            _release(spec)
        self.ended()

    def cancel(self, spec: Speculation) -> None:
        """SPEC is not wanted: stop it on its worker too."""
        if self.pool is not None and spec.task_id and not spec.future.done():
            self.pool.tell(spec.worker, wire.OP_CANCEL, Cancel(spec.task_id))
        spec.future.cancel()

    def promote(self, spec: Speculation) -> None:
        """go build waits for SPEC now: no longer below the worker's real compiles."""
        if self.pool is not None and not spec.future.done():
            self.pool.tell(spec.worker, wire.OP_PROMOTE, Promote(spec.output))


def speculative_call(pred: Prediction, imports: Mapping[str, Export], workdir: Path, pgo: str,
                     buildid: str) -> compilecall.CompileCall:
    """PRED's compile as a command line of its own in WORKDIR: its importcfg names the
    IMPORTS' export data this build made (the others' archives exist already), the build's
    PGO profile at PGO, the placeholder BUILDID."""
    workdir.mkdir()
    files = dict(pred.import_files)
    cfg = []
    for line in pred.importcfg.splitlines():
        if line.startswith("packagefile "):
            imp = line[len("packagefile "):]
            line += "=" + (imports[imp].path if imp in imports else files[imp])
        cfg.append(line)
    (workdir / "importcfg").write_text("\n".join(cfg) + "\n")
    if pred.embedcfg is not None:
        (workdir / "embedcfg").write_text(pred.embedcfg)
    args = [a.replace(PGO_PROFILE, pgo).replace("$WORK/b", str(workdir)).replace("$BUILDID", buildid)
            for a in pred.argv[1:]]
    return compilecall.parse(args, pred.cwd)


def request_parts(action: CompileAction, importcfg: str, exports: dict[str, str]
                  ) -> tuple[str, str, str]:
    """The content key of go build's real request ACTION (prediction.key_parts)."""
    call = action.parse()
    inputs = action.inputs or {}
    out = compilecall.flag_value(call.args, "-o") or ""
    work = work_dir(compilecall.absolute(call.cwd, out))
    if work is None:
        raise ValueError(f"-o {out} is not in a WORK dir")
    files = {call.importcfg: importcfg} if call.importcfg else {}
    if call.embedcfg:
        files[call.embedcfg] = Path(call.embedcfg).read_text()
    argv = action.request.argv
    real = prediction.predict_request(action.package, [os.path.basename(argv[0]), *call.args],
                                      call.cwd, work, files)
    profile = compilecall.absolute(call.cwd, compilecall.flag_value(call.args, "-pgoprofile") or "")
    return prediction.key_parts(
        real, lambda p: inputs[profile if p == PGO_PROFILE else p].sha, exports)


def speculation_report(specs: list[Speculation], preds: Mapping[str, Prediction],
                       exports: Exports, active: bool, plan_error: str,
                       not_speculated: dict[str, int]) -> dict[str, Any]:
    """The report's `speculation` section."""
    outcomes = Counter(s.outcome for s in specs)
    whys = Counter(f"{s.outcome}: {s.why}" for s in specs if s.why)
    wasted = sum(((s.ended or time.time()) - s.started) for s in specs if s.outcome != "hit")
    started = len(specs)
    return {
        "active": active,
        "plan_error": plan_error,
        "predicted": len(preds),
        "speculable": sum(1 for p in preds.values() if not_speculable(p) is None),
        "early_exports": exports.early,
        "early_exports_split": sorted(exports.early_split),
        "started": started,
        "hits": outcomes["hit"],
        "misses": outcomes["miss"],
        "failed": outcomes["failed"],
        "unused": outcomes["unused"] + outcomes["running"],
        "hit_rate": round(outcomes["hit"] / started, 4) if started else None,
        "head_start_s": round(sum(s.head_start_s for s in specs), 3),
        "wasted_s": round(wasted, 3),
        "reasons": dict(whys),
        "export_fracs": dict(exports.fracs),
        "not_speculated": not_speculated,
        "speculations": [{"package": s.package, "worker": s.worker, "outcome": s.outcome,
                          "why": s.why, "start": s.started, "end": s.ended,
                          "head_start_s": s.head_start_s} for s in specs],
    }


def _hash(blobs: BlobIndex | None, call: compilecall.CompileCall) -> dict[str, Blob]:
    """CALL's inputs as blobs (imports cut down to their export data)."""
    assert blobs is not None
    inputs = {p: blobs.blob(p) for p in call.inputs}
    for archive in call.archives:
        inputs[archive] = blobs.blob(archive, export_only=True)
    return inputs


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _release(spec: Speculation) -> None:
    """SPEC's answer was used, or will not be: let go of its future, which holds the
    encoded archive (the build keeps every speculation for its report: a pipelined gin
    head peaked ~50 MB above an unpipelined one). What still waits on the old future
    keeps it; a released one is done, so nothing cancels or promotes it again."""
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    done.set_result(None)
    spec.future = done


def _failed_future(exc: BaseException) -> concurrent.futures.Future[Any]:
    f: concurrent.futures.Future[Any] = concurrent.futures.Future()
    f.set_exception(exc)
    return f
