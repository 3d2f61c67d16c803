"""The build report: the contract between fgo, its tests and its benchmarks.

Schema (version 1), documented in docs/report.md:
  {"schema": 1, "fgo_version", "go_version", "project", "go_args", "exit_code",
   "cluster": {"scheduler", "workers", "threads"},
   "totals": {"actions", "remote", "local", "cached", "split", "fallbacks",
              "fallback_reasons": {reason: count}, "bytes_sent", "bytes_received",
              "unique_input_bytes", "wall_s", "dispatch_median_s"},
   "actions": [{"package", "tool", "mode", "worker", "fallback", "duration_s",
                "dispatch_s", "bytes_in", "bytes_out", "output_sha256", "build_id"}],
   "checks": [{"what", "name", "ok", "detail"}]}
mode is "remote" | "split" (shards + leader on several workers) | "local" | "cached" (go's cache: these never reached fgo).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fgo.paths import cache_dir

SCHEMA = 1


@dataclass
class ActionRecord:
    package: str
    tool: str
    mode: str                      # remote | split | local | cached
    worker: str | None = None
    fallback: str | None = None    # why a compile fgo saw ran locally
    duration_s: float | None = None
    dispatch_s: float | None = None  # request to tool start, plus tool end to reply
    bytes_in: int = 0              # blob bytes sent to the worker for this action
    goroot_bytes: int = 0          # input bytes not sent: the worker's own GOROOT has them
    bytes_out: int = 0             # output bytes brought back
    output_sha256: str | None = None
    build_id: str | None = None
    start: float | None = None     # epoch seconds: request (fgo) or go's TimeStart
    end: float | None = None       # epoch seconds: reply (fgo) or go's TimeDone
    split: dict[str, Any] | None = None  # --split-large: decision, plan, shards, merge, check
    source_bytes: int = 0          # the compile's .go input bytes (the straggler model's size)
    speculation: dict[str, Any] | None = None  # pipelining: the request met a speculation
    race: dict[str, Any] | None = None  # the head also ran it: started_s, winner, why
    slot: int | None = None        # the local slot the shim ran it on


def speculation_hit(speculation: dict[str, Any] | None) -> bool:
    """Whether a speculation answered the compile (ActionRecord.speculation, or its dict in
    a report): its worker compiled it under the speculation's build ID, not go's."""
    return (speculation or {}).get("outcome") == "hit"


@dataclass
class Recorder:
    """Thread-safe collector of the build's action records."""

    actions: list[ActionRecord] = field(default_factory=list)
    unique_inputs: dict[str, int] = field(default_factory=dict)   # sha -> size, all stores
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_add: Callable[[ActionRecord], None] | None = None           # e.g. -v's printer

    def add(self, rec: ActionRecord, needs: dict[str, int] | None = None) -> None:
        with self.lock:
            self.actions.append(rec)
            if needs and rec.mode in ("remote", "split"):
                self.unique_inputs.update(needs)
        if self.on_add:
            self.on_add(rec)


def merge_actiongraph(actions: list[ActionRecord], graph: list[dict[str, Any]],
                      unseen_reason: str | None = "did not reach fgo") -> list[ActionRecord]:
    """Add go's own view: cache hits, compiles fgo never saw (UNSEEN_REASON; None: by design,
    go build ran them itself), go's timings, build IDs."""
    by_pkg: dict[str, list[ActionRecord]] = {}
    for rec in actions:
        by_pkg.setdefault(rec.package, []).append(rec)
    out = list(actions)
    for node in graph:
        if node.get("Mode") != "build" or not node.get("Package"):
            continue
        pkg = node["Package"]
        build_id = node.get("BuildID") or None
        start, end = node_times(node)
        seen = by_pkg.get(pkg)
        if seen:
            for rec in seen:
                rec.build_id = build_id
                if rec.mode == "local":  # it ran in go's process tree: go timed it
                    rec.start, rec.end = start, end
                    if start is not None and end is not None:
                        rec.duration_s = round(end - start, 4)
        else:  # no tool ran: a GOCACHE hit; else go (or the shim) ran it on its own
            ran = bool(node.get("Cmd"))
            out.append(ActionRecord(package=pkg, tool="compile", mode="local" if ran else "cached",
                                    fallback=unseen_reason if ran else None, build_id=build_id,
                                    start=start, end=end,
                                    duration_s=round(end - start, 4) if ran and start and end
                                    else None))
    return out


def node_times(node: dict[str, Any]) -> tuple[float | None, float | None]:
    """An actiongraph node's (TimeStart, TimeDone) as epoch seconds."""
    from datetime import datetime
    try:
        return (datetime.fromisoformat(node["TimeStart"]).timestamp(),
                datetime.fromisoformat(node["TimeDone"]).timestamp())
    except (KeyError, ValueError, TypeError):
        return None, None


def summarize(recorder: Recorder, actions: list[ActionRecord], wall_s: float,
              **header: Any) -> dict[str, Any]:
    modes = Counter(a.mode for a in actions)
    reasons = Counter(a.fallback for a in actions if a.fallback)
    split_reasons = Counter(a.split["fallback"] for a in actions if a.split and a.split.get("fallback"))
    dispatch = [a.dispatch_s for a in actions if a.dispatch_s is not None]
    totals = {
        "actions": len(actions),
        "remote": modes["remote"],
        "local": modes["local"],
        "cached": modes["cached"],
        "split": modes["split"],
        "slot": sum(1 for a in actions if a.slot is not None),   # run by the shim on a slot
        "by_go": sum(1 for a in actions                           # go ran it, no shim (one
                     if a.mode == "local" and a.slot is None and not a.fallback   # machine);
                     and not a.race),                     # a race the head won is no such
        "raced": sum(1 for a in actions if a.race),            # the head ran it too
        "raced_won": sum(1 for a in actions if a.race and a.race.get("winner") == "head"),
        "fallbacks": sum(reasons.values()),
        "fallback_reasons": dict(reasons),
        "split_fallbacks": sum(split_reasons.values()),
        "split_fallback_reasons": dict(split_reasons),
        "bytes_sent": sum(a.bytes_in for a in actions),
        "bytes_from_workers_goroot": sum(a.goroot_bytes for a in actions),
        "bytes_received": sum(a.bytes_out for a in actions),
        "unique_input_bytes": sum(recorder.unique_inputs.values()),
        "wall_s": round(wall_s, 3),
        "dispatch_median_s": round(statistics.median(dispatch), 4) if dispatch else None,
    }
    return {"schema": SCHEMA, **header, "totals": totals,
            # a shallow copy each (dataclasses.asdict deep-copies: 0.2 s for a no-op's records)
            "actions": [dict(vars(a)) for a in actions]}


def head_cost(cpu_s: float, build_cpu_s: float, remote: int,
              peak_rss_mb: float | None = None,
              connect_cpu_s: float | None = None) -> dict[str, Any]:
    """The fgo process's own CPU (user+sys, not its children): in all (CPU_S, imports and
    cluster start included) and while go build ran (BUILD_CPU_S); each per remote compile;
    its peak resident memory (the shim server is a thread of it). CONNECT_CPU_S: a connect
    beside go build (its thread's CPU, Dask's import most of it), a cost once a build and
    not a compile's: per remote compile also without it."""
    per = (lambda s: round(1000 * s / remote, 2)) if remote else (lambda s: None)
    out = {"cpu_s": round(cpu_s, 3), "build_cpu_s": round(build_cpu_s, 3),
           "cpu_per_remote_ms": per(cpu_s), "build_cpu_per_remote_ms": per(build_cpu_s),
           "peak_rss_mb": peak_rss_mb}
    if connect_cpu_s is not None:
        out["connect_cpu_s"] = round(connect_cpu_s, 3)
        out["build_cpu_per_remote_ms_less_connect"] = per(max(0.0, build_cpu_s - connect_cpu_s))
    return out


def write(path: str, report: dict[str, Any], compact: bool = False) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=None if compact else 1, sort_keys=False,
                  separators=(",", ":") if compact else None)
        f.write("\n")


# ------------------------------------------------ the last report of each target

def _report_path(project: Path, go_args: list[str]) -> Path:
    key = hashlib.sha256(json.dumps([str(project), go_args]).encode()).hexdigest()[:16]
    return cache_dir() / "reports" / f"{key}.json"


def remember(project: Path, go_args: list[str], report: dict[str, Any]) -> None:
    """Keep the last report of this target that ran something: `fgo plan` uses its
    measured durations (a no-op rebuild measured nothing and keeps the one before)."""
    if not any(a.get("duration_s") for a in report.get("actions", [])):
        return
    try:
        path = _report_path(project, go_args)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(str(path), report, compact=True)
    except OSError:
        pass  # a cache we cannot write is no reason to fail a build


def last_durations(project: Path, go_args: list[str]) -> dict[str, float]:
    """Compile seconds per package measured by the last fgo build of this target."""
    try:
        report = json.loads(_report_path(project, go_args).read_text())
    except (OSError, ValueError):
        return {}
    return {a["package"]: a["duration_s"] for a in report.get("actions", [])
            if a.get("duration_s") and a["mode"] in ("remote", "local", "split")}


def remembered_cluster_path(scheduler: str) -> Path:
    """Where fgo keeps the size of the cluster the last build on SCHEDULER found."""
    return cache_dir() / "clusters" / f"{hashlib.sha256(scheduler.encode()).hexdigest()[:16]}.json"


def remember_cluster(report: dict[str, Any]) -> None:
    """Keep the size of the cluster this build found (its scheduler, workers, threads) and
    the workers to leave out as failing (fgo.head.policy.failing_after), for the next build
    on that scheduler, whatever its target (a no-op's too)."""
    cluster = report.get("cluster") or {}
    if not cluster.get("scheduler") or not cluster.get("workers"):
        return
    failing = cluster.get("failing_hosts")
    if failing is None:  # not learned by this build: as the last one left them
        failing = failing_in(last_cluster(cluster["scheduler"]))
    try:
        path = remembered_cluster_path(cluster["scheduler"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write(str(path), {**{k: cluster[k] for k in ("scheduler", "workers", "threads")},
                          **({"failing": failing} if failing else {})}, compact=True)
    except OSError:
        pass  # a cache we cannot write is no reason to fail a build


def last_cluster(scheduler: str | None) -> dict[str, Any] | None:
    """The cluster the last fgo build on SCHEDULER found (scheduler, workers, threads)."""
    if not scheduler:
        return None
    try:
        found = json.loads(remembered_cluster_path(scheduler).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def failing_in(cluster: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """The failing workers a remembered CLUSTER (`last_cluster`) holds (address ->
    {"times", "until"}); {} when none, or when the file says something else (a damaged
    cache must not fail a build, nor leave a worker out)."""
    found = (cluster or {}).get("failing")
    if not isinstance(found, dict):
        return {}
    number = (int, float)
    return {worker: {"times": float(r["times"]), "until": float(r["until"])}
            for worker, r in found.items() if isinstance(r, dict)
            and isinstance(r.get("times"), number) and isinstance(r.get("until"), number)}


def summary_line(report: dict[str, Any]) -> str:
    t = report["totals"]
    reasons = [f"{n} {r}" for r, n in sorted(t["fallback_reasons"].items())]
    if t.get("slot"):
        reasons.insert(0, f"{t['slot']} on slots")
    if t.get("by_go"):
        reasons.insert(0, f"{t['by_go']} by go build")
    local = f"{t['local']} local" + (f" ({', '.join(reasons)})" if reasons else "")
    if t.get("raced"):
        local += f", {t['raced']} raced ({t['raced_won']} won by the head)"
    split = f"{t['split']} split"
    if t.get("split_fallbacks"):  # compiled whole after all: remote or local, counted there
        why = ", ".join(f"{n} {r}" for r, n in sorted(t["split_fallback_reasons"].items()))
        split += f", {t['split_fallbacks']} split fell back ({why})"
    verified = ""
    if v := report.get("verification"):
        verified = f" {v['checked']} verified"
        if v.get("cross_checks"):
            verified += f" ({v['cross_checks']} on other workers)"
        if v["mismatched"]:
            verified += f", {len(v['mismatched'])} MISMATCHED (build failed)"
        verified += ";"
    pipelined = ""
    if (sp := report.get("speculation")) and sp.get("started"):
        pipelined = (f" {sp['hits']} of {sp['started']} speculative compiles taken"
                     f" ({sp['head_start_s']:.1f}s head start);")
    cache = ""
    if (c := report.get("shared_cache")) and "gets" in c:
        cache = f" {cache_summary(c)};"
    return (f"fgo: {t['remote']} remote, {local}, {t['cached']} cached, {split};{verified}"
            f"{pipelined}{cache} {t['bytes_sent'] / 1e6:.1f} MB sent; {t['wall_s']:.1f}s")


def cache_summary(c: dict[str, Any]) -> str:
    """One line of counters, for the build's summary line and `fgo cacheprog -v`."""
    hits = c["local_hits"] + c["remote_hits"]
    line = (f"cache {hits} hits ({c['remote_hits']} cluster), {c['misses']} misses, "
            f"{c['bytes_fetched'] / 1e6:.1f} MB fetched")
    if c["saved_s"]:
        line += f", {c['saved_s']:.1f}s saved"
    if c.get("published"):
        line += f", {c['published']} published"
    # the cluster tier's trust (fgo.cache.trust), only when something happened
    trouble = [f"{c[k]} {k}" for k in ("forged", "altered", "rechecked", "revoked") if c.get(k)]
    if c.get("recheck_mismatched"):
        trouble.append(f"{len(c['recheck_mismatched'])} re-checks DIFFERED")
    if trouble:
        line += ", " + ", ".join(trouble)
    if c["remote"].startswith("skipped"):
        line += f"; cluster tier {c['remote']}"
    return line
