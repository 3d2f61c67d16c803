"""Pipelined compilation (issue 15): dependents start from a package's early export data.

go build stays the driver, so it asks for a package's compile only after every import's
compile has returned. A dependent needs only its imports' export data, which the patched
compiler writes before its backend runs (`-fgoexport`, fgo.split.early_export). fgo
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

import base64
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

import networkx as nx

from fgo import toolchain
from fgo.planner import prediction
from fgo.planner.prediction import Prediction
from fgo.report.record import ActionRecord
from fgo.worker import compileargs
from fgo.worker.blobs import Blob, export_data, read_export_data
from fgo.worker.protocol import CompileResult, CompileTask

_ID_CHARS = string.ascii_letters + string.digits + "-_"
_WORK_DIR = re.compile(r"^(.*)/b\d+/[^/]+$")


# ------------------------------------------------------------------ decisions (pure)

MIN_THREADS = 4  # default on from here (and > 1 host)


def pipeline_wanted(flag: bool | None, hosts: int, threads: int) -> bool:
    """--pipeline/--no-pipeline, else on where it pays: more than one worker host (on one
    host the speculative compiles only take cores go build's own would use) and at least
    MIN_THREADS worker threads. Below that go build's own ready queue keeps the workers
    nearly busy (measured on two single-core emulated hosts, experiment 7 part 3: 0.85x
    with pipelining; simulated on etcd: 1.04x at 2 workers, 1.15x at 4, 2.0x at 8)."""
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
    it (the critical-path priority of list scheduling)."""
    g = nx.DiGraph()
    g.add_nodes_from(preds)
    g.add_edges_from((imp, pkg) for pkg, pred in preds.items() for imp in pred.imports
                     if imp in preds and imp != pkg)
    level: dict[str, float] = {}
    for pkg in reversed(list(nx.topological_sort(g))):
        level[pkg] = cost.get(pkg, 1.0) + max((level[d] for d in g.successors(pkg)), default=0.0)
    return level


def placeholder_buildid() -> str:
    """A -buildid for a speculative compile: go's form (action ID "/" itself, 20 characters
    each), unlikely to occur anywhere else in the output."""
    half = "fgo" + "".join(secrets.choice(_ID_CHARS) for _ in range(17))
    return f"{half}/{half}"


def rewrite_buildid(data: bytes, old: str, new: str) -> bytes:
    """DATA with every occurrence of build ID OLD replaced by NEW, in place (go's
    updateBuildID does the same): they must have the same length, and OLD must occur."""
    if len(old) != len(new):
        raise ValueError(f"build IDs of different lengths ({len(old)} and {len(new)})")
    if old.encode() not in data:
        raise ValueError("the speculative build ID is not in the output")
    return data.replace(old.encode(), new.encode())


def time_saved(requested: float, started: float, took: float) -> float:
    """How much earlier a hit's result was there than a compile started at REQUESTED:
    the speculation's head start, at most the compile's own time TOOK."""
    return max(0.0, min(took, requested - started))


def work_dir(output: str) -> str | None:
    """go build's WORK dir from a compile's -o ($WORK/bNNN/_pkg_.a)."""
    m = _WORK_DIR.match(output)
    return m[1] if m else None


# ------------------------------------------------------------------ state

@dataclass
class Export:
    """A package's export data as this build knows it."""

    sha: str            # prediction.export_data_sha (without the build ID line)
    path: str           # a file holding it (an archive starting with __.PKGDEF)
    speculative: bool   # from a speculative compile (a real one's replaces it)


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
    saved_s: float = 0.0


class Speculator:
    """Speculative compiles of one build, for its Coordinator (the COORDINATOR argument:
    its placement, blobs, prepare, call, verifier and local_job are used)."""

    def __init__(self, coordinator: Any, workdir: str, forced: bool | None = None) -> None:
        self.c = coordinator
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.forced = forced
        self.preds: dict[str, Prediction] = {}
        self.queue = ReadyQueue({}, {})
        self.active = False                    # a plan, and pipeline_wanted for the workers
        self.plan_error = ""
        self._start_plan: Callable[[], None] | None = None  # until speculation is wanted
        self.cond = threading.Condition()
        self.exports: dict[str, Export] = {}
        self.specs: dict[str, Speculation] = {}
        self.requested: set[str] = set()
        self.env: dict[str, str] | None = None  # go build's tool environment
        self.pgo: str | None = None             # the build's PGO profile (PGO_PROFILE)
        self.inbox: list[tuple[str, bytes, bool]] = []
        self.early = 0                          # export data that came before the result
        self.early_split: set[str] = set()      # of those, from split compiles' leaders
        self.early_at: dict[tuple[str, bool], float] = {}  # (package, speculative) -> worker time
        self.export_fracs: dict[str, float] = {}  # when in its compile the export data came
        self.closed = False
        self.not_speculated: Counter[str] = Counter()  # why real requests had none
        self._noid: dict[tuple[str, int, int, int, int], str] = {}  # (path, *file_version) -> sha
        self._seq = 0
        self._thread = threading.Thread(target=self._loop, name="fgo-speculator", daemon=True)
        self._thread.start()

    # --- set up ---

    def set_plan(self, preds: Mapping[str, Prediction] | None, error: str = "") -> None:
        """The build's predicted compiles (None: none could be had, for ERROR)."""
        cost = {}
        for pkg, pred in (preds or {}).items():
            cost[pkg] = float(sum(_size(p) for p in pred.sources)) or 1.0
        queue = ReadyQueue(preds or {}, priorities(preds or {}, cost))
        with self.cond:
            self.preds = dict(preds or {})
            self.queue = queue
            for pkg in [*self.requested, *self.specs]:
                queue.take(pkg)
            for pkg in self.exports:
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
        """The coordinator learned its workers: turn speculation on if it can help."""
        with self.cond:
            self.active = pipeline_wanted(self.forced, hosts, threads)
            start, self._start_plan = (self._start_plan, None) if self.active else (None,
                                                                                   self._start_plan)
            self.cond.notify_all()
        if start is not None:
            start()

    @property
    def early_export(self) -> bool:
        """Whether real compiles should send their export data early."""
        return self.active and not self.closed

    # --- from the coordinator ---

    def request(self, package: str, env: dict[str, str]) -> None:
        """go build asked for PACKAGE's compile: never start a speculation for it now."""
        with self.cond:
            self.requested.add(package)
            self.queue.take(package)
            if self.env is None:
                self.env = dict(env)

    def leader_export(self, package: str, data: bytes, at: float) -> None:
        """A split compile's leader sent PACKAGE's export data from its frontend."""
        with self.cond:
            self.early_split.add(package)
        self.export_ready(package, data, at=at)

    def poke(self) -> None:
        """A worker thread came free: look for a compile to start."""
        with self.cond:
            self.cond.notify_all()

    def export_ready(self, package: str, data: bytes, speculative: bool = False,
                     early: bool = True, at: float | None = None) -> None:
        """PACKAGE's export data arrived, EARLY while its backend still runs, written at AT
        (the worker's clock) (any thread, the event loop included: no waiting)."""
        with self.cond:
            self.inbox.append((package, data, speculative))
            self.early += early
            if at is not None:
                self.early_at[(package, speculative)] = at
            self.cond.notify_all()

    def _export_frac(self, package: str, speculative: bool, result: Any) -> None:
        """Record when in its compile (a share of the tool's wall time) RESULT's package had
        its export data: the simulator's frontend share (experiment 7)."""
        at = self.early_at.get((package, speculative))
        took = getattr(result, "tool_done", 0.0) - getattr(result, "tool_start", 0.0)
        if at is not None and took > 0:
            self.export_fracs[package] = round(min(1.0, max(0.0, (at - result.tool_start) / took)), 4)

    def archive_written(self, package: str, archive: str, result: Any = None) -> None:
        """A real compile of PACKAGE wrote ARCHIVE (its export data is final); RESULT is the
        remote compile's, if it was one."""
        if result is not None:
            self._export_frac(package, False, result)
        if (package, False) in self.early_at:  # it came early, identical (patch 0013)
            return
        try:
            data = read_export_data(archive)
        except OSError:
            return
        self.export_ready(package, data, early=False)

    def take(self, call: compileargs.CompileCall, argv: list[str], env: dict[str, str],
             inputs: dict[str, Blob], rec: ActionRecord, t0: float) -> dict[str, Any] | None:
        """The shim's reply from a matching speculation, or None to compile as usual
        (INPUTS: the request's blobs, as the coordinator hashed them)."""
        if not self.active:  # (nothing was speculated: no bookkeeping either)
            with self.cond:
                self.not_speculated["pipelining off"] += 1
            return None
        package = rec.package
        profile = compileargs.flag_value(call.args, "-pgoprofile")
        with self.cond:
            spec = self.specs.get(package)
            if profile and self.pgo is None:  # now speculations that read it may start
                self.pgo = compileargs.absolute(call.cwd, profile)
                self.queue.exported(PGO_PROFILE)
                self.cond.notify_all()
        importcfg = Path(call.importcfg).read_text() if call.importcfg else ""
        exports = self._import_exports(importcfg)
        if spec is None:
            rec.speculation = {"outcome": "none", "why": self._not_speculated(package)}
            return None
        try:
            parts = self._request_parts(package, call, argv, inputs, importcfg, exports)
        except (prediction.PredictError, KeyError, OSError, ValueError) as exc:
            return self._discard(spec, "miss", f"request not keyed: {exc}", rec)
        why = prediction.differs(spec.parts, parts)
        if why:
            return self._discard(spec, "miss", why, rec)
        if not spec.future.done():  # go build waits for it now: no longer below the others
            try:
                self.c.promote(spec.worker, spec.output)
            except Exception:  # noqa: BLE001  (it then finishes niced)
                pass
        try:
            result = spec.future.result(timeout=self.c.task_timeout)
        except Exception as exc:  # noqa: BLE001  (lost worker, cancelled, timed out)
            return self._discard(spec, "failed", f"{type(exc).__name__}: {exc}", rec)
        if not isinstance(result, CompileResult) or not result.ok or result.exit != 0:
            why = getattr(result, "reason", "") or f"exit {getattr(result, 'exit', '?')}"
            return self._discard(spec, "failed", why, rec)
        return self._hit(spec, result, call, env, inputs, rec, t0)

    def _hit(self, spec: Speculation, result: CompileResult, call: compileargs.CompileCall,
             env: dict[str, str], inputs: dict[str, Blob], rec: ActionRecord, t0: float
             ) -> dict[str, Any] | None:
        """SPEC's RESULT answers the request CALL: its build ID made go's, written where go
        expects it, recorded, and verified like a remote compile's."""
        buildid = _buildid(call)
        try:
            data = rewrite_buildid(result.outputs[spec.output], spec.buildid, buildid)
        except (KeyError, ValueError) as exc:
            return self._discard(spec, "failed", str(exc), rec)
        out = compileargs.absolute(call.cwd, compileargs.flag_value(call.args, "-o") or "")
        tmp = f"{out}.fgo-{secrets.token_hex(4)}"
        Path(tmp).write_bytes(data)
        os.replace(tmp, out)
        now = time.time()
        took = (spec.ended or now) - spec.started
        spec.outcome, spec.saved_s = "hit", round(time_saved(t0, spec.started, took), 4)
        rec.mode, rec.worker = "remote", spec.worker
        rec.duration_s, rec.end, rec.bytes_out = round(now - t0, 4), now, len(data)
        rec.speculation = {"outcome": "hit", "started": spec.started, "ended": spec.ended,
                           "saved_s": spec.saved_s}
        self.archive_written(rec.package, out)
        if self.c.verifier is not None:
            task = self.c.whole_task(call, env, inputs)
            self.c.verifier.after_remote(rec.package, f"{spec.worker} (speculative)", task.inputs,
                                         lambda: {out: data}, buildid,
                                         self.c.local_job(task, inputs))
        return {"local": False, "exit": 0, "output": base64.b64encode(result.output).decode()}

    def close(self) -> None:
        """go build ended: what still runs is not waited for."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
            specs = list(self.specs.values())
        for spec in specs:
            if spec.outcome == "running":
                spec.outcome = "unused"
                spec.future.cancel()

    # --- the report ---

    def report(self) -> dict[str, Any]:
        with self.cond:
            specs = list(self.specs.values())
            preds = dict(self.preds)
        outcomes = Counter(s.outcome for s in specs)
        whys = Counter(f"{s.outcome}: {s.why}" for s in specs if s.why)
        wasted = sum(((s.ended or time.time()) - s.started) for s in specs if s.outcome != "hit")
        started = len(specs)
        return {
            "active": self.active,
            "plan_error": self.plan_error,
            "predicted": len(preds),
            "speculable": sum(1 for p in preds.values() if not_speculable(p) is None),
            "early_exports": self.early,
            "early_exports_split": sorted(self.early_split),
            "started": started,
            "hits": outcomes["hit"],
            "misses": outcomes["miss"],
            "failed": outcomes["failed"],
            "unused": outcomes["unused"] + outcomes["running"],
            "hit_rate": round(outcomes["hit"] / started, 4) if started else None,
            "saved_s": round(sum(s.saved_s for s in specs), 3),
            "wasted_s": round(wasted, 3),
            "reasons": dict(whys),
            "export_fracs": dict(self.export_fracs),
            "not_speculated": dict(self.not_speculated),
            "speculations": [{"package": s.package, "worker": s.worker, "outcome": s.outcome,
                              "why": s.why, "start": s.started, "end": s.ended,
                              "saved_s": s.saved_s} for s in specs],
        }

    # --- inside ---

    def _loop(self) -> None:
        while True:
            with self.cond:
                if not (self.closed or self.inbox):
                    self.cond.wait(0.5)  # woken by export data, a free thread, the plan
                if self.closed:
                    return
                inbox, self.inbox = self.inbox, []
            for package, data, speculative in inbox:
                self._register(package, data, speculative)
            try:
                self._start_ready()
            except Exception:  # noqa: BLE001  (a speculation is only ever an optimization)
                pass

    def _register(self, package: str, data: bytes, speculative: bool) -> None:
        try:
            sha = prediction.export_data_sha(data)
        except prediction.PredictError:
            return
        with self.cond:
            have = self.exports.get(package)
            if have is not None and (have.sha == sha or speculative and not have.speculative):
                return
            self._seq += 1
            path = self.dir / "exports" / f"{self._seq}.a"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        with self.cond:
            self.exports[package] = Export(sha, str(path), speculative)
            self.queue.exported(package)

    def _start_ready(self) -> None:
        while True:
            with self.cond:
                if self.closed or not self.active or not self.env:
                    return
                package = self.queue.next()
            if package is None or self.c.free_threads() <= 0 or not self._start(package):
                return

    def _start(self, package: str) -> bool:
        """Start PACKAGE's speculation; False if there was no worker for it."""
        pred = self.preds[package]
        with self.cond:
            self._seq += 1
            action = self.dir / f"b{self._seq}"
            exports = {imp: self.exports[imp] for imp in made_by_build(pred) - {PGO_PROFILE}}
            env = dict(self.env or {})
            pgo = self.pgo or ""
        buildid = placeholder_buildid()
        action.mkdir()
        try:
            files = dict(pred.import_files)
            cfg = []
            for line in pred.importcfg.splitlines():
                if line.startswith("packagefile "):
                    imp = line[len("packagefile "):]
                    line += "=" + (exports[imp].path if imp in exports else files[imp])
                cfg.append(line)
            (action / "importcfg").write_text("\n".join(cfg) + "\n")
            if pred.embedcfg is not None:
                (action / "embedcfg").write_text(pred.embedcfg)
            argv = [str(toolchain.tool_path("compile"))] + [
                a.replace(PGO_PROFILE, pgo).replace("$WORK/b", str(action)).replace("$BUILDID", buildid)
                for a in pred.argv[1:]]
            call = compileargs.parse(argv[1:], pred.cwd)
            inputs = self.c.input_blobs(call)
            export_sha = {imp: e.sha for imp, e in exports.items()}
            for imp, file in pred.import_files:
                if imp not in export_sha:
                    export_sha[imp] = self._export(file)[0]
            parts = prediction.key_parts(pred, lambda p: inputs[pgo if p == PGO_PROFILE else p].sha,
                                         export_sha)
            address = self.c.choose_speculative(inputs)
        except Exception as exc:  # noqa: BLE001  (it cannot be speculated: go build asks anyway)
            with self.cond:
                self.specs[package] = Speculation(package, ("", "", ""), "", buildid, "",
                                                  time.time(), _failed_future(exc),
                                                  ended=time.time(), outcome="failed",
                                                  why=f"not started: {type(exc).__name__}: {exc}")
                self.queue.take(package)
            return True
        if address is None:
            return False
        with self.cond:
            self.queue.take(package)
        task, sent = self.c.prepare(address, call, env, inputs)
        task = replace(task, deliver=False, early_export=True, speculative=True)
        future = self.c.call(task, address, on_export=lambda r: self.export_ready(
            package, r.data, speculative=True, at=r.at))
        spec = Speculation(package, parts, call.outputs[0] if len(call.outputs) == 1 else "",
                           buildid, address, time.time(), future)
        with self.cond:
            self.specs[package] = spec
            if package in self.requested:  # asked for while it was being started
                spec.outcome, spec.why = "unused", "asked for while starting"
                future.cancel()
        needs = [b.sha for b in inputs.values()]
        future.add_done_callback(lambda f: self._ended(spec, f, task, sent, needs))
        return True

    def _ended(self, spec: Speculation, future: concurrent.futures.Future[Any],
               task: CompileTask, sent: list[str], needs: list[str]) -> None:
        spec.ended = time.time()
        result = None if future.cancelled() or future.exception() else future.result()
        ok = isinstance(result, CompileResult) and result.ok
        self.c.finished(spec.worker, sent, needs if ok else [], speculative=True)
        if ok:
            self._export_frac(spec.package, True, result)
        if ok and result.exit == 0 and spec.output in result.outputs:
            self.export_ready(spec.package, export_data(result.outputs[spec.output]),
                              speculative=True, early=False)
        with self.cond:
            self.cond.notify_all()

    def _discard(self, spec: Speculation, outcome: str, why: str, rec: ActionRecord) -> None:
        spec.outcome, spec.why = outcome, why
        spec.future.cancel()
        rec.speculation = {"outcome": outcome, "why": why, "started": spec.started}
        return None

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

    def _import_exports(self, importcfg: str) -> dict[str, str]:
        """The export data sha of each import in a real request's IMPORTCFG (their archives
        are final): learned for later speculations too."""
        out = {}
        for imp, file in prediction.packagefiles(importcfg).items():
            out[imp], data = self._export(file)
            with self.cond:
                have = self.exports.get(imp)
            if have is None or have.speculative and have.sha != out[imp]:
                self.export_ready(imp, data or read_export_data(file), early=False)
        return out

    def _export(self, file: str) -> tuple[str, bytes | None]:
        """FILE's export data sha; and its export data when it had to be read for it (the
        sha is kept per file version)."""
        key = (file, *toolchain.file_version(os.stat(file)))
        sha = self._noid.get(key)
        if sha is not None:
            return sha, None
        data = read_export_data(file)
        sha = self._noid[key] = prediction.export_data_sha(data)
        return sha, data

    def _request_parts(self, package: str, call: compileargs.CompileCall, argv: list[str],
                       inputs: dict[str, Blob], importcfg: str, exports: dict[str, str]
                       ) -> tuple[str, str, str]:
        out = compileargs.flag_value(call.args, "-o") or ""
        work = work_dir(compileargs.absolute(call.cwd, out))
        if work is None:
            raise ValueError(f"-o {out} is not in a WORK dir")
        files = {call.importcfg: importcfg} if call.importcfg else {}
        if call.embedcfg:
            files[call.embedcfg] = Path(call.embedcfg).read_text()
        real = prediction.predict_request(package, [os.path.basename(argv[0]), *call.args],
                                          call.cwd, work, files)
        profile = compileargs.absolute(call.cwd, compileargs.flag_value(call.args, "-pgoprofile") or "")
        return prediction.key_parts(
            real, lambda p: inputs[profile if p == PGO_PROFILE else p].sha, exports)


def _buildid(call: compileargs.CompileCall) -> str:
    return compileargs.flag_value(call.args, "-buildid") or ""


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _failed_future(exc: BaseException) -> concurrent.futures.Future[Any]:
    f: concurrent.futures.Future[Any] = concurrent.futures.Future()
    f.set_exception(exc)
    return f
