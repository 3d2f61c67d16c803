"""`fgo build`: go build as the driver, its compiles on a Dask cluster.

go build keeps everything it is good at (the action graph, GOCACHE, build
IDs, cgo, the link); fgo only replaces where a compile runs, through
-toolexec. The same tool IDs (-V=full never leaves the shim) mean fgo and a
plain go build share one cache.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgo import __version__, toolchain
from fgo.errors import FgoError
from fgo.fileio import scratch_dir
from fgo.head import policy
from fgo.head.options import BuildOptions
from fgo.report.record import (Recorder, failing_in, head_cost, last_cluster, merge_actiongraph,
                               remember, remember_cluster, speculation_hit, summarize,
                               summary_line, write)

if TYPE_CHECKING:  # what serves compiles: loaded only by a build that has a session (_session)
    from fgo.head.session import BuildSession


def project_dir(project: str) -> Path:
    """PROJECT as a directory go can build in, or a one-line error."""
    path = Path(project)
    if not path.exists():
        raise FgoError(f"project directory {project} does not exist")
    if not path.is_dir():
        raise FgoError(f"{project} is not a directory")
    path = path.resolve()
    in_module = any((d / "go.mod").is_file() for d in (path, *path.parents))
    if not in_module and not any(path.glob("*.go")):
        raise FgoError(f"{project} is not a Go project (no go.mod above it and no .go files in it)")
    return path


def _user_flags(go_args: list[str]) -> set[str]:
    return {a.lstrip("-").split("=")[0] for a in go_args if a.startswith("-")}


def go_build_command(go_args: list[str], shim: str | None, parallelism: int | None,
                     actiongraph: str) -> list[str]:
    cmd = [str(toolchain.go_binary()), "build"]
    if shim:
        cmd += ["-toolexec", shim]
    if parallelism and "p" not in _user_flags(go_args):
        cmd.append(f"-p={parallelism}")
    if "debug-actiongraph" not in _user_flags(go_args):  # the user's own is read instead
        cmd.append(f"-debug-actiongraph={actiongraph}")
    return cmd + go_args


def actiongraph_path(go_args: list[str], default: str, cwd: Path) -> str:
    """Where go build writes its action graph: the user's -debug-actiongraph, else DEFAULT."""
    for i, a in enumerate(go_args):
        if a.lstrip("-").startswith("debug-actiongraph="):
            return os.path.join(cwd, a.split("=", 1)[1])
        if a.lstrip("-") == "debug-actiongraph" and i + 1 < len(go_args):
            return os.path.join(cwd, go_args[i + 1])
    return default


def _connect(opts: BuildOptions) -> Any:
    """The cluster, or None when it is unreachable and --fallback-local allows a local build.
    The embedded one starts with the first compile that needs it."""
    from fgo.cluster.connect import ClusterError, EmbeddedCluster
    if not opts.scheduler:
        return EmbeddedCluster(opts.workers, opts.threads, service=_compile_service)
    try:
        return _scheduler(opts)
    except ClusterError as exc:
        if not opts.fallback_local:
            raise _unreachable(exc) from None
        _building_locally(exc)
        return None


def _scheduler(opts: BuildOptions) -> Any:
    """The cluster of --scheduler, connected, fgo's service on its workers."""
    from fgo.cluster.connect import connect, import_distributed, tls_security
    import_distributed()  # before fgo.worker.service imports it as a worker would
    from fgo.worker.service import QuietNanny, QuietScheduler, RevocationBeacon
    assert opts.scheduler
    return connect(opts.scheduler, opts.workers, opts.threads, security=tls_security(opts.tls),
                   service=_compile_service(), extras=[QuietNanny(), QuietScheduler(),
                                                        RevocationBeacon()])


def _unreachable(exc: Exception) -> FgoError:
    return FgoError(f"{exc} (--fallback-local builds locally instead)")


def _building_locally(exc: Exception) -> None:
    print(f"fgo: {exc}; building locally (--fallback-local)", file=sys.stderr)


def _connect_beside(opts: BuildOptions, workers: int, threads: int) -> Any:
    """The scheduler's cluster, connected in the background while go build starts, sized
    as the last build on it found it (fgo.head.policy.connect_beside_go)."""
    from fgo.cluster.connect import BackgroundCluster, check_tls
    assert opts.scheduler
    check_tls(opts.tls)  # bad input fails here, before go build starts
    # on demand (a compile for the workers, the cacheprog's first miss, a publish), in the
    # background: the import of Dask is most of it
    return BackgroundCluster(opts.scheduler, lambda: _scheduler(opts), workers, threads)


class _Connected:
    """What the build does once its cluster is connected: the cluster tier's index read for
    go's cacheprog, and the staging of the bodies no worker holds while go build runs. With
    a scheduler connected on demand (BackgroundCluster), in a thread beside go build, once
    something needs the cluster: a compile for the workers (fgo.head.pool), the cacheprog's
    first miss (it rings the doorbell), a publish (`join`). When it cannot be reached, the
    cacheprog is told (every miss its own) and, unless --fallback-local, go build is
    stopped (ABORT)."""

    def __init__(self, cluster: Any, opts: BuildOptions, shared: Any) -> None:
        self.cluster, self.opts, self.shared = cluster, opts, shared
        self.session: BuildSession | None = None
        self._session_known = threading.Event()  # `set_session`: before or after `start`
        self.abort = threading.Event()
        self.error: Exception | None = None
        self.stager: Any = None
        self.abandoned = False  # go build ended first, needing nothing of the cluster
        self._thread: threading.Thread | None = None
        self._doorbell: Any = None

    def set_session(self, session: BuildSession | None) -> None:
        """The head's session (None: none, or it failed), which the staging asks what the
        workers lack; `start` may come first when go build starts before the session."""
        self.session = session
        self._session_known.set()

    def start(self) -> None:
        if self.cluster is None or self.cluster.local:  # embedded: started on demand only
            return
        if getattr(self.cluster, "started", True):  # connected already: before go build
            self._run()
            return
        if self.shared is not None:
            from fgo.fileio import Doorbell
            self.shared.index_coming = True
            self._doorbell = Doorbell(self.shared.want)
            self._doorbell.on_ring(self.cluster.start)
        self._thread = threading.Thread(target=self._run, name="fgo-connected", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()

    def _run(self) -> None:
        from fgo.cluster.connect import ClusterError
        if not getattr(self.cluster, "wait_begun", lambda: True)():
            return  # abandoned before anything needed it
        try:
            client = self.cluster.client
        except ClusterError as exc:
            if self.abandoned:
                return
            self.error = exc
            if self.shared is not None:
                self.shared.no_cluster()
            if self.opts.fallback_local:
                _building_locally(exc)
            else:
                self.abort.set()
            return
        if self.shared is None or not self._session_known.wait() or self.session is None:
            return
        try:
            # read first: the helper may be waiting for it
            self.shared.read_index(client, max(5.0, 5 * self.opts.cache_timeout))
            self.stager = self.shared.stage(client, self.session.front.worker_lacks)
        except Exception as exc:  # noqa: BLE001 - a thread's bug: one line, the build goes on
            self.shared.no_cluster()  # (a helper waiting for the index: every miss its own)
            print(f"fgo: shared cache: {type(exc).__name__}: {exc}", file=sys.stderr)

    @property
    def connecting(self) -> bool:
        """The scheduler is still being connected, beside go build."""
        return self._thread is not None and bool(getattr(self.cluster, "connecting", False))

    def abandon(self) -> bool:
        """Stop waiting for a connect still running: the build ends without the cluster
        (policy.after_go_build). False when it had just ended: then `join` it."""
        if not self.cluster.abandon():
            return False
        self.abandoned = True
        return True

    def join(self) -> Any:
        """The stager, once the connect (begun now if nothing had asked for it) and what
        follows it have ended."""
        if self._thread is not None and not self.abandoned:
            self.cluster.start()
            self._thread.join()
        return self.stager


def _compile_service() -> Any:
    """fgo's worker plugin (imported only when a cluster is used: it imports dask)."""
    from fgo.worker.service import CompileService
    return CompileService()


def run(opts: BuildOptions, again: bool = False) -> int:
    """`fgo build`: go build, through fgo's shim when there is anything to distribute (else
    alone), then verification, the report and the exit status (go build's own, or 1 when a
    verification or --check found a mismatch). Once more (AGAIN) when go was given a cache
    entry of a worker the cluster had revoked: those entries removed, go computes them."""
    started = time.monotonic()
    project = project_dir(opts.project)
    if "toolexec" in _user_flags(opts.go_args):
        raise FgoError("-toolexec cannot be combined with fgo (fgo is the toolexec program)")
    key = _cache_key(opts)  # bad input fails before any cluster is reached
    slots = policy.local_slots(opts.local_slots)
    alone = policy.go_alone(opts.scheduler, slots, opts.workers is not None,
                            opts.split_large, opts.pipeline, opts.shards)
    # the cluster the last build on this scheduler found, read once: its size, its failing
    known = None if alone else last_cluster(opts.scheduler)
    beside = None if alone else policy.connect_beside_go(opts.scheduler, known)
    cluster = None if alone else _connect_beside(opts, *beside) if beside else _connect(opts)
    if alone and not opts.quiet:
        print(f"fgo: {slots} local slots; nothing to distribute on one machine: go build "
              "compiles" + (" (a split pays only onto other hosts)" if opts.split_large else ""),
              file=sys.stderr)
    recorder = Recorder(on_add=_print_action if opts.verbose else None)
    session = connected = go = listener = None
    deferred = 0
    revoked_used: list[tuple[str, str, str]] = []
    try:
        with scratch_dir("fgo-") as tmp:
            shared = _shared_cache(opts, cluster, Path(tmp), key)
            connected = _Connected(cluster, opts, shared)
            go = _GoBuild(project, opts, tmp, shared, connected.abort)
            early = policy.go_before_head(beside is not None, opts.split_large)
            if early:
                from fgo.head.shim import listen, socket_path
                assert beside is not None
                workers, threads = beside
                listener = listen(socket_path(tmp))
                connected.start()  # its doorbell before go's cacheprog may ring it
                go.start(socket_path(tmp),
                         policy.parallelism(slots, workers * threads, True, workers))
            try:
                session = _session(cluster, recorder, opts, tmp, project, failing_in(known),
                                   listener,
                                   go.parallelism) if cluster else None
            finally:  # (a connect that ends before the session waits for it)
                connected.set_session(session)
            if shared is not None and session is not None:
                # the cacheprog reads go's bodies from the compiles' files, not from base64
                from fgo.cache.outputs import OutputLog
                if session.pool is not None:  # one found stopped is sent nothing more
                    session.pool.on_unresponsive.append(shared.late.add)
                    for worker in sorted(session.pool.unresponsive):
                        shared.late.add(worker)
                session.front.output_log = OutputLog(shared.outputs)
                # the publish runs beside the link, once its gate found nothing wrong
                session.front.on_link = _early_publish(shared, cluster, session, recorder,
                                                       connected)
                session.front.link_checks.append(_revocation_gate(shared, connected))
            if session is not None:
                _serve(session, cluster, opts)
            if not early:
                connected.start()
            build_cpu, build_span = -_own_cpu(), time.monotonic()
            exit_code, graph = go.finish(session)
            build_cpu += _own_cpu()
            connect_cpu = _connect_cpu_within(cluster, (build_span, time.monotonic()))
            puts = shared.puts() if shared is not None else []
            after = policy.after_go_build(connected.connecting, len(puts),
                                          shared is not None and shared.hits_to_check())
            if after != policy.PUBLISH and connected.abandon():
                deferred = shared.defer(puts) if shared is not None and after == policy.DEFER \
                    else 0
            else:
                connected.join()
            if connected.error is not None:  # go build ran without the cluster, or was stopped
                cluster = None
                if not opts.fallback_local or exit_code is None:
                    raise _unreachable(connected.error)
            assert exit_code is not None  # None only for a go build stopped: raised above
            revoked_used = shared.revoked_in_use() if shared is not None else []
            if revoked_used:  # nothing computed from them stays, nothing of it is published
                assert shared is not None
                shared.drop_revoked()
                shared.evict(puts)
            verifier = session.verifier if session else None
            mismatches = verifier.wait() if verifier else []
            evicted = _evict(verifier.suspects() if mismatches else [], shared)
            checks = _check(project, opts, graph) if opts.check and exit_code == 0 \
                and not mismatches else []
            unseen = None if alone else "scheduler unreachable" if cluster is None \
                else "did not reach fgo"
            report = summarize(recorder, merge_actiongraph(recorder.actions, graph,
                                                           unseen_reason=unseen),
                               time.monotonic() - started,
                               fgo_version=__version__, go_version=toolchain.go_version(),
                               project=str(project), go_args=opts.go_args, exit_code=exit_code,
                               cluster={**_cluster_info(cluster, session, opts, bool(beside),
                                                        connected.abandoned),
                                        "go_before_head": listener is not None},
                               checks=checks)
            if session is not None and session.pool is not None:
                report["workers_peak_rss_mb"] = session.pool.peak_rss_mb()
                if cluster is not None and not cluster.local:
                    report["cluster"]["failing_hosts"] = _failing_hosts(session.pool,
                                                                        report["actions"])
            if session is not None and session.speculator is not None:
                report["speculation"] = session.speculator.report()
            if verifier is not None:
                report["verification"] = {**verifier.report(), "evicted": evicted}
                verifier.close()
            if shared is not None and connected.abandoned:
                report["shared_cache"] = {"scheduler": opts.scheduler, **shared.counters(),
                                          "published": 0, "deferred": deferred}
            elif shared is not None and cluster is not None:
                report["shared_cache"] = _share(
                    shared, cluster, report, bool(mismatches or revoked_used),
                    frozenset(session.pool.unresponsive) if session and session.pool
                    else frozenset(), connected.stager)
                if doubted := report["shared_cache"].pop("doubted_buildids", []):
                    # a re-check found a worker wrong: its outputs of this build go too
                    report["shared_cache"]["evicted"] = _evict(doubted, shared)
            if session is not None and session.pool is not None:
                # with those found stopped after the summary: a probe's late answer, a
                # deadline of the staging or the publish
                with session.pool.lock:
                    late = set(session.pool.unresponsive)
                if shared is not None:
                    late |= shared.late.snapshot()
                report["cluster"]["unresponsive"] = sorted(late)
            # last: the publish is part of what the head costs, in CPU and in memory
            report["head"] = head_cost(_own_cpu(), build_cpu, report["totals"]["remote"],
                                       _own_peak_rss_mb(), connect_cpu)
    finally:
        if go is not None:  # started beside a head that then failed: not left running
            go.stop()
        if listener is not None:
            listener.close()
        if connected is not None:
            connected.close()
            if connected.stager is not None:
                connected.stager.stop()
        if session is not None and session.front.output_log is not None:
            session.front.output_log.close()
        if cluster is not None:
            cluster.close()
    if revoked_used:
        for line in _revoked_lines(revoked_used):
            print(line, file=sys.stderr)
        if again:  # the helper refuses them now: nothing should be left to refuse
            raise FgoError("revoked cache entries were given to go again")
        print("fgo: removed from the local cache; building again", file=sys.stderr)
        return run(opts, again=True)
    _publish(project, opts, report, graph)
    for m in mismatches:
        print(m.line(), file=sys.stderr)
    failed = [c for c in checks if not c["ok"]]
    for c in failed:
        print(f"fgo: check failed: {c['what']} {c['name']}: {c['detail']}", file=sys.stderr)
    if exit_code == 0 and (failed or mismatches):
        return 1
    return exit_code


def _revoked_lines(used: list[tuple[str, str, str]]) -> list[str]:
    """One line per revoked producer whose entries go was given (its first entry named)."""
    first: dict[str, tuple[str, int]] = {}
    for action, _output, producer in used:
        seen = first.get(producer)
        first[producer] = (seen[0] if seen else action, (seen[1] if seen else 0) + 1)
    return [f"fgo: {n} cache entr{'y' if n == 1 else 'ies'} of {producer}, revoked in the "
            f"cluster, given to go (first {action[:16]})"
            for producer, (action, n) in first.items()]


def _revocation_gate(shared: Any, connected: _Connected) -> Callable[[], list[str]]:
    """What a link asks first: the workers' entries go was given without waiting for the
    cluster's revocations, checked once the connect has read them (a line each revoked
    producer; none, at once, when go was given none)."""
    def check() -> list[str]:
        if not shared.hits_to_check():
            return []
        connected.join()
        return _revoked_lines(shared.revoked_in_use())
    return check


def _session(cluster: Any, recorder: Recorder, opts: BuildOptions, tmp: str,
             project: Path, failing: dict[str, dict[str, float]], listener: Any = None,
             parallelism: int | None = None) -> BuildSession:
    """The head of this build, its shim's socket not served yet (LISTENER when go build,
    started with -p PARALLELISM, is running already); FAILING: the workers an earlier build
    on its scheduler left out as failing."""
    from fgo.head.session import BuildSession
    session = BuildSession(cluster, recorder, opts, tmp, project, listener, failing)
    session.front.parallelism = session.parallelism() if listener is None else parallelism
    return session


def _serve(session: BuildSession, cluster: Any, opts: BuildOptions) -> None:
    """SESSION serving the shim's socket, said in a line."""
    session.start()
    if not opts.quiet:
        workers, threads = session.size()
        slots = f"{session.slots.n} local slots" if session.slots.n else "no local slots"
        if cluster.local and not session.workers_count:
            where = "; the embedded cluster only for what needs it"
        else:
            where = (f", {workers} workers, {threads} threads "
                     f"({'embedded' if cluster.local else cluster.scheduler})")
        print(f"fgo: {slots}{where}"
              + (f"; dashboard {cluster.dashboard}" if cluster.dashboard else ""),
              file=sys.stderr)


def _cache_key(opts: BuildOptions) -> tuple[Path, bytes] | None:
    """The heads' key file and key when this build uses the shared cache (a head makes the
    default one on first use); a key that cannot be used is an FgoError."""
    if not (opts.shared_cache and opts.scheduler):
        return None
    from fgo.cache import trust
    path, create = trust.key_location(opts.cache_key, opts.tls[2])
    try:
        return path, trust.load_key(path, create)
    except trust.CacheKeyError as exc:
        raise FgoError(f"--cache-key: {exc}") from None


def _connect_cpu_within(cluster: Any, span: tuple[float, float]) -> float | None:
    """The CPU of CLUSTER's connect (a BackgroundCluster's thread) when it ran wholly within
    SPAN, go build's: then it is part of the head's CPU while go build ran."""
    within = getattr(cluster, "span", None)
    if within is None or not (span[0] <= within[0] and within[1] <= span[1]):
        return None
    return getattr(cluster, "cpu_s", None)


def _shared_cache(opts: BuildOptions, cluster: Any, tmp: Path,
                  key: tuple[Path, bytes] | None) -> Any:
    """This build's shared cache: with a cluster given (--scheduler) unless
    --no-shared-cache; None when go has no cache here (GOCACHE=off)."""
    if key is None or cluster is None:
        return None
    from fgo.cache.helper import command
    from fgo.cache.session import SharedCache
    gocache = toolchain.gocache()
    if not gocache or gocache == "off":
        return None
    key_file, secret = key
    identity = toolchain.identity()
    helper = command(cluster.scheduler, opts.tls, opts.cache_size, opts.cache_timeout,
                     str(key_file), opts.cache_recheck)
    try:
        shared = SharedCache(Path(gocache), identity, tmp,
                             _fronted(helper, Path(gocache), identity, opts.cache_size), secret,
                             scheduler=cluster.scheduler)
    except ValueError as exc:  # a path go could not be given
        raise FgoError(f"--shared-cache: {exc}") from None
    shared.check_revocations()  # before go starts: its cache helper is told
    return shared


def _fronted(helper: list[str], gocache: Path, identity: Any, size: int) -> list[str]:
    """HELPER behind the cacheprog front (fgo.cache.front), which answers the local tier's
    stamped hits without an interpreter; HELPER alone if the front cannot be built."""
    from fgo.cache import front
    from fgo.cache.local import local_root, namespace
    from fgo.cache.server import Counters
    try:
        return front.command(helper, local_root(gocache, namespace(identity)), size,
                             Counters(remote="unused").to_json())
    except toolchain.ToolchainError:
        return helper


def _provenance(actions: list[dict[str, Any]], checks: list[dict[str, Any]]) -> Any:
    """Who produced each compile of ACTIONS and whether verification compared it (CHECKS),
    by the action-ID prefix of its -buildid (what the cache's entries are signed with)."""
    from fgo.cache import trust
    from fgo.cache.publish import Provenance
    from fgo.head.checks import action_id_prefix
    matched = {(c["package"], c["worker"]) for c in checks
               if c.get("matched") and c.get("kind") in ("remote", "speculative")}
    split_matched = {c["package"] for c in checks if c.get("matched") and c.get("kind") == "split"}
    known = Provenance()
    for a in actions:
        if a["mode"] not in ("remote", "local", "split") or not a.get("build_id") \
                or not (p := action_id_prefix(a["build_id"])):
            continue
        if a.get("duration_s"):
            known.seconds[p] = a["duration_s"]
        if a["mode"] == "remote" and a.get("worker"):
            known.producer[p] = a["worker"]
            known.checked[p] = (a["package"], a["worker"]) in matched
            if a.get("output_sha256") and not speculation_hit(a.get("speculation")):
                # the worker kept that archive, made with go's -buildid (not a speculation's)
                action = a["build_id"].split("/")[0]
                known.archive[p] = (a["output_sha256"], f"{action}/{action}")
        elif a["mode"] == "split":
            workers = (a.get("split") or {}).get("workers") or [a.get("worker") or ""]
            known.producer[p] = trust.join_producers(workers)
            known.checked[p] = a["package"] in split_matched
    return known


def _early_publish(shared: Any, cluster: Any, session: BuildSession, recorder: Recorder,
                   connected: _Connected) -> Callable[[], None]:
    """What the link gate calls: publish what go build put so far, from what the build
    knows by then (its compiles so far, the checks that passed)."""
    def known() -> Any:
        with recorder.lock:
            actions = [asdict(a) for a in recorder.actions]
        verifier = session.verifier
        return _provenance(actions, verifier.report()["checks"] if verifier else [])

    def skip() -> frozenset[str]:
        return frozenset(session.pool.unresponsive) if session.pool else frozenset()

    def publish() -> None:
        if connected.connecting:  # nothing needed the cluster so far: go build's end decides
            return
        stager = connected.join()  # connected by the link, but perhaps only just
        if connected.error is None:
            shared.publish_early(cluster.client, known, skip, stager)
    return publish


def _share(shared: Any, cluster: Any, report: dict[str, Any], mismatched: bool,
           skip: frozenset[str] = frozenset(), stager: Any = None) -> dict[str, Any]:
    """Revoke what this build found wrong (every cluster entry of a worker its verification
    excluded; an entry a re-check found different, with its producer's), then publish this
    build's cache entries, signed, only when verification found no mismatch; the counters
    for the report."""
    from fgo.cache import trust
    from fgo.head.checks import action_id_prefix
    out: dict[str, Any] = {"scheduler": cluster.scheduler, **shared.counters()}
    known = _provenance(report["actions"], (report.get("verification") or {}).get("checks", []))
    excluded = set((report.get("verification") or {}).get("excluded", []))
    now = time.time()
    revocations = trust.worker_revocations(shared.key, shared.ns, excluded,
                                           "fgo build's verification found it wrong", now)
    conclusive = []
    for m in out.get("recheck_mismatched", []):
        # who computed go's put: a worker this build excluded cannot settle it
        m["recomputed_by"] = by = known.producer.get(m["action"][:30], trust.HEAD)
        m["conclusive"] = not trust.producers(by) & excluded
        if m["conclusive"]:
            conclusive.append(m)
    revocations += trust.recheck_revocations(shared.key, shared.ns, conclusive, now)
    revoked = shared.known_revocations()  # nothing a revoked worker made is published
    new = trust.Revoked()
    for r in revocations:
        revoked.add(r)
        new.add(r)
    if revocations:
        out["revoked"] = out.get("revoked", 0) + len(revocations)
        out["revoked_entries"] = out.get("revoked_entries", 0) + \
            shared.revoke(cluster.client, revocations)
        out["revocations"] = [{k: v for k, v in (("action", r.action), ("output", r.output),
                                                 ("producer", r.producer),
                                                 ("reason", r.reason)) if v}
                              for r in revocations]
        # this build's own outputs from a worker a re-check found wrong are in doubt too
        found_wrong = new.producers - excluded
        out["doubted_buildids"] = [
            a["build_id"] for a in report["actions"] if a.get("build_id")
            and trust.producers(known.producer.get(action_id_prefix(a["build_id"]) or "", ""))
            & found_wrong]
    if mismatched:  # what the link's early pass published came from checked compiles
        early = shared.early_result()       # (a worker found wrong later: revoked above)
        return {**out, "published": early.get("published", 0),
                "withheld": "verification found a mismatch"}
    return {**out, **shared.publish(cluster.client, known, skip, revoked, stager)}


class _GoBuild:
    """This build's go build: through the shim when there is a session (its cache through
    fgo cacheprog with SHARED), started before the session (`start`, policy.go_before_head)
    or by `finish`, which waits for it. ABORT stops it."""

    def __init__(self, project: Path, opts: BuildOptions, tmp: str, shared: Any,
                 abort: threading.Event) -> None:
        self.project, self.opts, self.shared, self.abort = project, opts, shared, abort
        self.actiongraph = actiongraph_path(opts.go_args, os.path.join(tmp, "actiongraph.json"),
                                            project)
        self.parallelism: int | None = None  # go's default: this machine's cores
        self._started: toolchain.Started | None = None

    def start(self, socket: str | None, parallelism: int | None) -> None:
        """go build started, through the shim connecting to SOCKET (None: without it)."""
        from fgo.head.shim import shim_path
        env = toolchain.go_env()
        if self.shared is not None:  # as the connect's start left it (index_coming)
            env.update(self.shared.go_env())
        if socket is not None:
            env["FGO_SOCKET"] = socket
        self.parallelism = parallelism
        cmd = go_build_command(self.opts.go_args, str(shim_path()) if socket else None,
                               parallelism, self.actiongraph)
        self._started = toolchain.start_unless(cmd, self.abort, cwd=self.project, env=env)

    def stop(self) -> None:
        """go build killed if it still runs (the head failed beside it)."""
        if self._started is not None:
            self._started.kill()

    def finish(self, session: BuildSession | None) -> tuple[int | None, list[dict[str, Any]]]:
        """go build (started now if it was not) waited for: its exit status (None: stopped
        by the abort) and its action graph."""
        if self._started is None:
            self.start(session.socket_path if session else None,
                       session.front.parallelism if session else None)
        assert self._started is not None
        from fgo.head.progress import Progress
        progress = Progress(session.front) if session and self.opts.progress \
            and not self.opts.quiet else None
        if progress:
            progress.start()
        try:
            exit_code = self._started.wait()
        finally:
            if progress:
                progress.stop()
            if session:
                session.stop()
        return exit_code, _load_json(self.actiongraph)


def _check(project: Path, opts: BuildOptions, graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """--check: the plain build's comparison; nothing to compare is a failure, not a pass."""
    from fgo.verify.check import check_build
    checks = check_build(project, opts.go_args, graph)
    if not checks:  # an unreadable action graph must not pass for a match
        checks = [{"what": "build", "name": str(project), "ok": False,
                   "detail": "nothing to compare: go build's action graph is missing or "
                             "names no package"}]
    return checks


def _cluster_info(cluster: Any, session: BuildSession | None, opts: BuildOptions,
                  beside: bool = False, abandoned: bool = False) -> dict[str, Any]:
    """BESIDE: go build started while the scheduler was connecting; ABANDONED: it ended
    before the connect, needing nothing of the cluster (the sizes are the remembered ones)."""
    workers, threads = session.size() if session and cluster is not None else (0, 0)
    return {"scheduler": cluster.scheduler if cluster else opts.scheduler,
            "workers": workers, "threads": threads, "connected_beside_go": beside,
            "not_waited_for": abandoned,
            "local_slots": session.slots.n if session else
            (policy.local_slots(opts.local_slots) if not opts.scheduler else 0),
            "go_alone": session is None and not opts.scheduler,
            "go_parallelism": session.front.parallelism if session else None,  # the -p fgo gave
            "unresponsive": sorted(session.pool.unresponsive) if session and session.pool
            else [],
            # the workers whose compiles went over a channel of fgo's own, and those whose
            # channel failed (fgo.cluster.channel)
            "channels": sorted(session.pool.channels) if session and session.pool else [],
            "channels_failed": sorted(session.pool.channel_failed) if session and session.pool
            else [],
            # compiles a worker failed that go's own run then built, and who was left out
            "host_faults": dict(session.pool.host_faults) if session and session.pool else {},
            "left_out_failing": sorted(session.pool.failing) if session and session.pool
            else [],
            # ... and who was left out for an earlier build's (until when, time.time())
            "backed_off": {a: round(t) for a, t in sorted(session.pool.backed_off.items())}
            if session and session.pool else {}}


def _failing_hosts(pool: Any, actions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The failing workers the next builds on this scheduler leave out
    (policy.failing_after), from the remembered ones and what this build's workers did."""
    remote = {a["worker"] for a in actions if a.get("mode") == "remote" and a.get("worker")}
    failing, proven = pool.host_records(remote)
    return policy.failing_after(pool.remembered_failing, failing, proven, time.time())


def _publish(project: Path, opts: BuildOptions, report: dict[str, Any],
             graph: list[dict[str, Any]]) -> None:
    """The report, the trace and the summary line, where they were asked for."""
    if opts.report:
        write(opts.report, report)
    remember(project, opts.go_args, report)
    remember_cluster(report)
    if opts.trace:
        from fgo.report.trace import write_trace
        write_trace(opts.trace, report, graph)
    if not opts.quiet:
        print(summary_line(report), file=sys.stderr)


def _evict(buildids: list[str], shared: Any = None) -> list[str]:
    """Remove the cache entries of the compiles with these -buildid values (outputs that
    failed verification, or came from a worker that did), so that no later build, fgo's or
    a plain go build, reuses them: GOCACHE's, and the local tier's when go's cache went
    through fgo cacheprog (the build then publishes nothing to the cluster tier)."""
    if not buildids:
        return []
    from fgo.head.checks import action_id_prefix
    from fgo.head.ledger import evict
    gocache = toolchain.gocache()
    removed = [path for b in buildids for path in evict(Path(gocache), b)] if gocache else []
    if shared is not None:
        removed += shared.evict([p for b in buildids if (p := action_id_prefix(b))])
    return removed


def _print_action(rec: Any) -> None:
    where = rec.worker if rec.mode == "remote" else f"local ({rec.fallback})"
    took = f"{rec.duration_s:.2f}s" if rec.duration_s is not None else ""
    print(f"fgo: {rec.tool} {rec.package}: {where} {took}", file=sys.stderr)


def _own_cpu() -> float:
    """User+sys CPU seconds of this process (all its threads, not its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _own_peak_rss_mb() -> float:
    """This process's peak resident memory (MB; Linux reports ru_maxrss in KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load_json(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []
