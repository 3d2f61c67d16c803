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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgo import __version__, toolchain
from fgo.errors import FgoError
from fgo.build.progress import Progress
from fgo.report.record import (Recorder, head_cost, merge_actiongraph, remember,
                               summarize, summary_line, write)


@dataclass
class BuildOptions:
    project: str
    go_args: list[str] = field(default_factory=list)
    scheduler: str | None = None      # tcp://host:port; None: embedded LocalCluster
    workers: int | None = None        # embedded cluster size (default: one per core)
    threads: int = 1                  # threads per embedded worker
    report: str | None = None         # write the JSON report here
    trace: str | None = None          # write a Chrome trace (Perfetto) here
    progress: bool = False            # live progress line (on a terminal)
    verbose: bool = False             # a line per compile
    fallback_local: bool = False      # unreachable scheduler: build locally, not fail
    tls: tuple[str | None, str | None, str | None] = (None, None, None)  # ca, cert, key
    split_large: str | None = None    # None: off; "auto"; or SECONDS (predicted compile time)
    shards: str = "auto"              # K or "auto"
    check: bool = False               # also build plainly and compare
    quiet: bool = False
    task_timeout: float = 600.0
    verify_rate: float = 0.03         # share of remote compiles recompiled here and compared
    verify_splits: str = "first"      # first | always | off: split packages compiled stock here
    shared_cache: bool = True         # with --scheduler: go's cache through fgo cacheprog
    cache_size: int = 5 << 30         # the local tier's size limit
    cache_timeout: float = 2.0        # a cluster-tier request slower than this: tier off
    pipeline: bool | None = None      # None: on with more than one worker host


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
    The embedded one starts with the first compile (a no-op build never starts it)."""
    from fgo.build.cluster import ClusterError, EmbeddedCluster, connect, tls_security
    if not opts.scheduler:
        return EmbeddedCluster(opts.workers, opts.threads)
    try:
        return connect(opts.scheduler, opts.workers, opts.threads,
                       security=tls_security(opts.tls))
    except ClusterError as exc:
        if not opts.fallback_local:
            raise FgoError(f"{exc} (--fallback-local builds locally instead)") from None
        print(f"fgo: {exc}; building locally (--fallback-local)", file=sys.stderr)
        return None


def _splitter(coordinator: Any, opts: BuildOptions) -> Any:
    from fgo.split.compiler import PatchError
    from fgo.split.dispatch import SplitOptions, Splitter
    try:
        threshold = None if opts.split_large == "auto" else float(opts.split_large or 0)
        shards = None if opts.shards == "auto" else int(opts.shards)
    except ValueError:
        raise FgoError(f"--split-large takes SECONDS and --shards K or auto, "
                       f"not {opts.split_large!r}/{opts.shards!r}") from None
    if shards is not None and shards < 2 or threshold is not None and threshold < 0:
        raise FgoError("--shards needs K >= 2 and --split-large SECONDS >= 0")
    try:
        return Splitter(coordinator, SplitOptions(threshold, shards))
    except PatchError as exc:
        raise FgoError(f"--split-large needs the patched compiler: {exc}") from None


def run(opts: BuildOptions) -> int:
    """`fgo build`: go build with fgo's shim, then verification, the report and the exit
    status (go build's own, or 1 when a verification or --check found a mismatch)."""
    started = time.monotonic()
    project = project_dir(opts.project)
    if "toolexec" in _user_flags(opts.go_args):
        raise FgoError("-toolexec cannot be combined with fgo (fgo is the toolexec program)")
    cluster = _connect(opts)
    recorder = Recorder(on_add=_print_action if opts.verbose else None)
    try:
        with tempfile.TemporaryDirectory(prefix="fgo-") as tmp:
            coordinator = _start_coordinator(cluster, recorder, opts, tmp, project) \
                if cluster else None
            shared = _shared_cache(opts, cluster, Path(tmp))
            build_cpu = -_own_cpu()
            exit_code, graph = _go_build(project, opts, coordinator, tmp, shared)
            build_cpu += _own_cpu()
            verifier = coordinator.verifier if coordinator else None
            mismatches = verifier.wait() if verifier else []
            evicted = _evict(verifier.suspects() if mismatches else [], shared)
            checks = _check(project, opts, graph) if opts.check and exit_code == 0 \
                and not mismatches else []
            unseen = "scheduler unreachable" if cluster is None else "did not reach fgo"
            report = summarize(recorder, merge_actiongraph(recorder.actions, graph,
                                                           unseen_reason=unseen),
                               time.monotonic() - started,
                               fgo_version=__version__, go_version=toolchain.go_version(),
                               project=str(project), go_args=opts.go_args, exit_code=exit_code,
                               cluster=_cluster_info(cluster, coordinator, opts), checks=checks)
            report["head"] = head_cost(_own_cpu(), build_cpu, report["totals"]["remote"])
            if coordinator is not None and coordinator.speculator is not None:
                report["speculation"] = coordinator.speculator.report()
            if verifier is not None:
                report["verification"] = {**verifier.report(), "evicted": evicted}
                verifier.close()
            if shared is not None:
                report["shared_cache"] = _share(
                    shared, cluster, report, bool(mismatches),
                    frozenset(coordinator.unresponsive) if coordinator else frozenset())
    finally:
        if cluster is not None:
            cluster.close()
    _publish(project, opts, report, graph)
    for m in mismatches:
        print(m.line(), file=sys.stderr)
    failed = [c for c in checks if not c["ok"]]
    for c in failed:
        print(f"fgo: check failed: {c['what']} {c['name']}: {c['detail']}", file=sys.stderr)
    if exit_code == 0 and (failed or mismatches):
        return 1
    return exit_code


def _start_coordinator(cluster: Any, recorder: Recorder, opts: BuildOptions, tmp: str,
                       project: Path) -> Any:
    """The coordinator of this build, serving the shim's socket, with its verifier,
    with --split-large its splitter, and with pipelining its speculator."""
    from fgo.build.coordinator import Coordinator
    coordinator = Coordinator(cluster, recorder, os.path.join(tmp, "shim.sock"),
                              task_timeout=opts.task_timeout, verifier=_verifier(opts))
    if opts.pipeline or opts.pipeline is None and not cluster.local:
        # (an embedded cluster is one host: there pipelining is off unless asked for)
        _speculator(coordinator, opts, tmp, project)
    if not cluster.local or opts.split_large is not None:
        # a split needs its workers from the first compile on: no local start-up phase
        cluster.client  # noqa: B018  (starts an embedded cluster now)
        coordinator.ensure_workers()
    if opts.split_large is not None:
        coordinator.set_splitter(_splitter(coordinator, opts))
    coordinator.start()
    if not opts.quiet:
        workers, threads = _cluster_size(cluster, coordinator)
        print(f"fgo: {workers} workers, {threads} threads"
              f" ({'embedded' if cluster.local else cluster.scheduler})"
              + (f"; dashboard {cluster.dashboard}" if cluster.dashboard else ""),
              file=sys.stderr)
    return coordinator


def _speculator(coordinator: Any, opts: BuildOptions, tmp: str, project: Path) -> None:
    """Attach a speculator to COORDINATOR; go's plan (`go build -n`) is read in the
    background, and speculation starts once it is there."""
    import threading
    from fgo.build.speculation import Speculator
    from fgo.worker import faults
    speculator = Speculator(coordinator, os.path.join(tmp, "speculation"), forced=opts.pipeline)
    coordinator.set_speculator(speculator)

    def plan() -> None:
        from fgo.planner import prediction
        try:
            predictions = prediction.plan(opts.go_args, cwd=project)
        except (prediction.PredictError, toolchain.ToolchainError, OSError) as exc:
            speculator.set_plan(None, str(exc))
            return
        faults.after_plan()
        speculator.set_plan(predictions)
    if faults.edits_after_plan():  # go build must start from the edited tree
        plan()
    else:
        speculator.plan_when_wanted(
            lambda: threading.Thread(target=plan, name="fgo-plan", daemon=True).start())


def _cluster_size(cluster: Any, coordinator: Any) -> tuple[int, int]:
    """Workers and threads: as learned, or as the embedded cluster will start them."""
    if coordinator.learned:
        return len(coordinator.placement.workers), coordinator.placement.total_threads()
    return cluster.workers, cluster.workers * cluster.threads


def _shared_cache(opts: BuildOptions, cluster: Any, tmp: Path) -> Any:
    """This build's shared cache: with a cluster given (--scheduler) unless
    --no-shared-cache; None when go has no cache here (GOCACHE=off)."""
    if not (opts.shared_cache and opts.scheduler and cluster is not None):
        return None
    from fgo.cache.session import SharedCache, cacheprog_args
    gocache = toolchain.run_go(["env", "GOCACHE"], check=False).stdout.strip()
    if not gocache or gocache == "off":
        return None
    try:
        return SharedCache(Path(gocache), toolchain.identity(), tmp,
                           cacheprog_args(cluster.scheduler, opts.tls, opts.cache_size,
                                          opts.cache_timeout))
    except ValueError as exc:  # a path go could not be given
        raise FgoError(f"--shared-cache: {exc}") from None


def _share(shared: Any, cluster: Any, report: dict[str, Any], mismatched: bool,
           skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Publish this build's cache entries to the cluster tier, only when verification found
    no mismatch; the counters for the report."""
    from fgo.build.verification import action_id_prefix
    out = {"scheduler": cluster.scheduler, **shared.counters()}
    if mismatched:
        return {**out, "published": 0, "withheld": "verification found a mismatch"}
    seconds = {p: a["duration_s"] for a in report["actions"]
               if a["mode"] in ("remote", "local", "split") and a.get("duration_s")
               and a.get("build_id") and (p := action_id_prefix(a["build_id"]))}
    return {**out, **shared.publish(cluster.client, seconds, skip)}


def _go_build(project: Path, opts: BuildOptions, coordinator: Any, tmp: str,
              shared: Any = None) -> tuple[int, list[dict[str, Any]]]:
    """Run go build (through the shim when there is a coordinator; its cache through fgo
    cacheprog with SHARED): its exit status and its action graph."""
    from fgo.build.shim import shim_path
    env = toolchain.go_env()
    if shared is not None:
        env.update(shared.go_env())
    parallelism = None  # go's default: this machine's cores
    if coordinator is not None:
        env["FGO_SOCKET"] = coordinator.socket_path
        # -p: the usable worker threads (all refused: go's default, all local)
        parallelism = _cluster_size(coordinator.cluster, coordinator)[1] or None
    actiongraph = actiongraph_path(opts.go_args, os.path.join(tmp, "actiongraph.json"), project)
    cmd = go_build_command(opts.go_args, str(shim_path()) if coordinator else None,
                           parallelism, actiongraph)
    progress = Progress(coordinator) if coordinator and opts.progress and not opts.quiet \
        else None
    if progress:
        progress.start()
    try:
        exit_code = toolchain.run(cmd, cwd=project, env=env, capture=False).returncode
    finally:
        if progress:
            progress.stop()
        if coordinator:
            coordinator.stop()
    return exit_code, _load_json(actiongraph)


def _check(project: Path, opts: BuildOptions, graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """--check: the plain build's comparison; nothing to compare is a failure, not a pass."""
    from fgo.verify.check import check_build
    checks = check_build(project, opts.go_args, graph)
    if not checks:  # an unreadable action graph must not pass for a match
        checks = [{"what": "build", "name": str(project), "ok": False,
                   "detail": "nothing to compare: go build's action graph is missing or "
                             "names no package"}]
    return checks


def _cluster_info(cluster: Any, coordinator: Any, opts: BuildOptions) -> dict[str, Any]:
    workers, threads = _cluster_size(cluster, coordinator) if coordinator else (0, 0)
    return {"scheduler": cluster.scheduler if cluster else opts.scheduler,
            "workers": workers, "threads": threads,
            "unresponsive": sorted(coordinator.unresponsive) if coordinator else []}


def _publish(project: Path, opts: BuildOptions, report: dict[str, Any],
             graph: list[dict[str, Any]]) -> None:
    """The report, the trace and the summary line, where they were asked for."""
    if opts.report:
        write(opts.report, report)
    remember(project, opts.go_args, report)
    if opts.trace:
        from fgo.report.trace import write_trace
        write_trace(opts.trace, report, graph)
    if not opts.quiet:
        print(summary_line(report), file=sys.stderr)


def _verifier(opts: BuildOptions) -> Any:
    """The default verification; --check compiles every split stock here as well."""
    from fgo.build.verification import Ledger, Verifier
    from fgo.paths import cache_dir
    return Verifier(rate=opts.verify_rate,
                    split_mode="always" if opts.check else opts.verify_splits,
                    ledger=Ledger(Path(os.environ.get("FGO_LEDGER")
                                       or cache_dir() / "verified-splits.json")))


def _evict(buildids: list[str], shared: Any = None) -> list[str]:
    """Remove the cache entries of the compiles with these -buildid values (outputs that
    failed verification, or came from a worker that did), so that no later build, fgo's or
    a plain go build, reuses them: GOCACHE's, and the local tier's when go's cache went
    through fgo cacheprog (the build then publishes nothing to the cluster tier)."""
    if not buildids:
        return []
    from fgo.build.verification import action_id_prefix, evict
    gocache = toolchain.run_go(["env", "GOCACHE"], check=False).stdout.strip()
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


def _load_json(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []
