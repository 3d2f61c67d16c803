"""Issue item 5: a randomized fault campaign, measured on real processes.

A real `dask scheduler` and 2 `dask worker` processes (one thread each); where this machine
can (root, network namespaces) each worker runs on an emulated host: a network namespace
behind a veth pair and a bridge, limited by tbf (experiments/hosts.py), sharing the
filesystem with the head (simulated hosts: the link is emulated, the disks are not). Faults
are drawn from a seed (experiments/faultplan.py: kind, project, target worker, the compile
count after which it fires, the cache entry it alters) and injected one per build:

- a "compile" fault fires once the campaign has seen that many compiles start on the
  workers (compile processes under the worker's pid), at a moment the target has one
  running; a build that ends first was not faulted (not counted);
- environment faults (FGO_FAULT: corrupt transfers, damaged shards, wrong compiles) count
  only when the worker's FGO_FAULT_LOG shows the fault changed something in this build;
- a full disk counts when the build reports the store's ENOSPC; a cache entry altered or
  forged on a worker's disk counts when the build read it (the entry was deleted or used).

Every build (`fgo build --scheduler ... --verify-catch 0.05` of the test projects hello and
large, without -a, in a copy of a head GOCACHE whose local tier holds std, the cluster tier
emptied unless the fault needs it) is compared by sha256 with ONE oracle per project: a plain `go build` into
its own empty GOCACHE, built once. The cluster tier and the head's local tier are compared
entry by entry (action ID -> output ID) with the oracles' GOCACHEs. Results:
results/faults.json (+ csv); the seed is FGO_FAULT_SEED (default SEED), the target
FGO_FAULT_TARGET injected faults, the wall budget FGO_FAULT_BUDGET_S.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from experiments import faultplan as plan
from experiments import hosts as hostsmod
from experiments import lab as labmod
from fgo import toolchain

SEED = 20261203
TARGET = 200                # injected faults
BUDGET_S = 2850.0           # the campaign stops here even if short of TARGET (recorded)
BUILD_TIMEOUT_S = 120.0     # a build still running then is a hang (a failure)
Q = 0.1                     # the intermittent worker's share of wrong compiles
CATCH = 0.05                # every build runs with --verify-catch CATCH: a worker wrong on this
                            # share of its compiles caught with 99% confidence (the campaign of
                            # 2026-12-03 09:33, at the default 3% sample, let 8 of 12 through)
WORKERS = 2
WARM_STD = ("os", "sort", "strconv", "reflect")  # in the head's template caches; fmt and the
                                                # projects' packages compile in each build
LARGE_FUNCS = 300           # the large project's package size (tests/test_split.py): seconds, not minutes
SLOW_RATE = "2mbit"
POLL_S = 0.02
MAX_AFTER = 4               # a "compile" fault fires after 0..3 compiles started (a build has ~7)
REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _load(name: str) -> Any:
    """A module of tests/ by file (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"fgo_faults_{name}", REPO / "tests" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "tests"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "tests"))
    return module


def sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def go_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "FGO_"))}
    return toolchain.go_env(base, GOFLAGS="-buildvcs=false", **extra)


# ------------------------------------------------------------------ emulated hosts (links only)

@dataclass
class Links:
    """A network namespace per worker behind a veth pair and a bridge (experiments/hosts.py's
    layout, without its private installations: the filesystem is shared)."""

    n: int
    owner: int = field(default_factory=os.getpid)
    bridge: str = ""
    gateway: str = ""
    hosts: list[tuple[str, str, str]] = field(default_factory=list)  # (netns, veth, address)

    def __enter__(self) -> Links:
        hostsmod.remove_stale()
        x = hostsmod.pick_subnet(self.owner, hostsmod.used_subnets())
        self.bridge, self.gateway = hostsmod.bridge_name(self.owner), f"10.77.{x}.1"
        try:
            hostsmod.add_bridge(self.bridge, self.gateway)
            for i in range(self.n):
                ns, veth = hostsmod.names(self.owner, i)
                addr = f"10.77.{x}.{10 + i}"
                self.hosts.append((ns, veth, addr))
                hostsmod.add_namespace(ns, veth, self.bridge, addr)
                self.rate(i, hostsmod.RATE, add=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def rate(self, i: int, rate: str, add: bool = False) -> None:
        """Host I's link limited to RATE both ways (tbf)."""
        ns, veth, _ = self.hosts[i]
        burst = hostsmod.BURST if rate == hostsmod.RATE else "16kb"
        for prefix, dev in (([], veth), (["ip", "netns", "exec", ns], "eth0")):
            cmd = hostsmod.tbf(dev, rate)
            cmd[2] = "add" if add else "change"
            cmd[cmd.index("burst") + 1] = burst
            hostsmod._run([*prefix, *cmd])

    def link(self, i: int, up: bool) -> None:
        hostsmod._run(["ip", "link", "set", self.hosts[i][1], "up" if up else "down"])

    def __exit__(self, *exc: object) -> None:
        for ns, veth, _ in self.hosts:
            hostsmod._delete_netns(ns)
            hostsmod._run(["ip", "link", "del", veth], check=False)
        if self.bridge:
            hostsmod._run(["ip", "link", "del", self.bridge], check=False)
        self.hosts, self.bridge = [], ""


# ------------------------------------------------------------------ the cluster

class Cluster:
    """`dask scheduler` + WORKERS `dask worker`s (each its own store, cluster-tier directory
    and fault log), restartable one by one, each in its emulated host when LINKS is given."""

    def __init__(self, root: Path, links: Links | None) -> None:
        self.root, self.links = root, links
        self.host = links.gateway if links else "127.0.0.1"
        self.port = hostsmod._free_port(self.host)
        self.address = f"tcp://{self.host}:{self.port}"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * WORKERS
        self.envs: list[dict[str, str]] = [{} for _ in range(WORKERS)]
        self.addresses: dict[int, str] = {}
        self.tmpfs: Path | None = None
        self._n = 0

    def log(self, name: str) -> Any:
        self._n += 1
        return open(self.root / f"{name}-{self._n}.log", "wb")

    def start_scheduler(self) -> None:
        self.scheduler = subprocess.Popen(
            [str(VENV_BIN / "dask"), "scheduler", "--host", self.host, "--port", str(self.port),
             "--no-dashboard"], stdout=self.log("scheduler"), stderr=subprocess.STDOUT)

    def store(self, i: int) -> Path:
        return self.root / f"store-{i}"

    def tier(self, i: int) -> Path:
        return self.root / f"store-{i}-gocache"  # fgo.cache.store: beside the store

    def fault_log(self, i: int) -> Path:
        return self.root / f"fault-{i}.log"

    def start_worker(self, i: int, env: dict[str, str]) -> None:
        prefix, host = [], "127.0.0.1"
        if self.links:
            ns, _, host = self.links.hosts[i]
            prefix = ["ip", "netns", "exec", ns]  # execs: the pid is the worker's
        full = {**os.environ, "FGO_STORE": str(self.store(i)),
                "FGO_SHARED_CACHE_DIR": str(self.tier(i)), "FGO_FAULT_LOG": str(self.fault_log(i)),
                **env}
        self.workers[i] = subprocess.Popen(
            [*prefix, str(VENV_BIN / "dask"), "worker", self.address, "--nthreads", "1",
             "--no-nanny", "--host", host, "--no-dashboard"],
            stdout=self.log(f"worker{i}"), stderr=subprocess.STDOUT, env=full)
        self.envs[i] = env

    def start(self) -> None:
        self.start_scheduler()
        for i in range(WORKERS):
            self.start_worker(i, {})
        self.wait()

    def wait(self, timeout: float = 60) -> None:
        """All workers connected; their addresses by index (from their pids)."""
        from distributed import Client
        with Client(self.address, timeout=timeout) as c:
            c.wait_for_workers(WORKERS, timeout=timeout)
            info = c.run(os.getpid)  # address -> pid
        pids = {w.pid: i for i, w in enumerate(self.workers) if w}
        self.addresses = {pids[pid]: a for a, pid in info.items() if pid in pids}
        assert len(self.addresses) == WORKERS, (info, pids)

    def stop_worker(self, i: int) -> None:
        w = self.workers[i]
        if w and w.poll() is None:
            with _quiet():
                os.kill(w.pid, signal.SIGCONT)
            w.kill()
            w.wait(10)
        self.workers[i] = None

    def set_worker(self, i: int, env: dict[str, str]) -> bool:
        """Worker I running with ENV (restarted when it differs, or is gone): restarted?"""
        w = self.workers[i]
        if w is None or w.poll() is not None or self.envs[i] != env:
            self.stop_worker(i)
            self.start_worker(i, env)
            return True
        return False

    def restart_scheduler(self) -> None:
        """A new scheduler on the same address (the old one killed)."""
        if self.scheduler and self.scheduler.poll() is None:
            self.scheduler.kill()
            self.scheduler.wait(10)
        self.start_scheduler()

    def close(self) -> None:
        for i in range(WORKERS):
            self.stop_worker(i)
        if self.scheduler and self.scheduler.poll() is None:
            self.scheduler.terminate()
            try:
                self.scheduler.wait(10)
            except subprocess.TimeoutExpired:
                self.scheduler.kill()
        self.umount()

    def umount(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", str(self.tmpfs)], check=False, capture_output=True)
            self.tmpfs = None

    def small_store(self) -> Path:
        """A 512 kB tmpfs for a worker's store: a full disk."""
        self.umount()
        path = self.root / "small-store"
        path.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(path)], check=True,
                       capture_output=True)
        self.tmpfs = path
        return path


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (ProcessLookupError, PermissionError))


# ------------------------------------------------------------------ observing compiles

def compiles_of(pid: int) -> set[int]:
    """Pids of the compile processes under process PID (a worker's compiles)."""
    import psutil
    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True) if c.name() == "compile"}
    except psutil.Error:
        return set()


def connected(pid: int, port: int) -> bool:
    """Whether process PID holds an established connection to PORT (the scheduler)."""
    import psutil
    try:
        return any(c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
                   for c in psutil.Process(pid).net_connections("tcp"))
    except psutil.Error:
        return False


class Monitor(threading.Thread):
    """Watches the workers' compiles while a build runs; fires INJECT once the fault's time
    has come (see faultplan.TIMINGS). `fired` says whether it hit what it had to."""

    def __init__(self, cluster: Cluster, fault: plan.Fault, head: subprocess.Popen[str],
                 inject: Any) -> None:
        super().__init__(daemon=True)
        self.cluster, self.fault, self.head, self.inject = cluster, fault, head, inject
        self.seen: set[int] = set()
        self.fired = False
        self.note = ""
        self.done = threading.Event()

    def run(self) -> None:
        timing = plan.KINDS[self.fault.kind].timing
        while not self.done.is_set() and self.head.poll() is None:
            running = {i: compiles_of(w.pid) for i, w in enumerate(self.cluster.workers) if w}
            for pids in running.values():
                self.seen |= pids
            if not self.fired:
                if timing == "connect" and connected(self.head.pid, self.cluster.port):
                    self.fired = not self.seen  # before any compile started: during the connect
                    self.note = "stopped at connect" if self.fired else "connect came after compiles"
                    self.inject()
                    return
                if timing == "compile" and len(self.seen) > self.fault.after:
                    target = (set().union(*running.values()) if self.fault.kind == "scheduler-restart"
                              else running.get(self.fault.worker, set()))
                    if target:
                        self.inject()
                        self.fired = True
                        self.note = f"{len(target)} compile(s) running on the target"
            time.sleep(POLL_S)


# ------------------------------------------------------------------ caches

def go_cache_outputs(gocache: Path) -> dict[str, str]:
    """go's own GOCACHE: action ID -> output ID (its `-a` index files)."""
    out = {}
    for index in gocache.glob("??/*-a"):
        parts = index.read_text().split()
        if len(parts) >= 3 and parts[0] == "v1":
            out[parts[1]] = parts[2]
    return out


def go_cache_entries(gocache: Path) -> dict[str, tuple[str, Path]]:
    """go_cache_outputs in tier_outputs' form."""
    return {a: (o, gocache) for a, o in go_cache_outputs(gocache).items()}


def tier_outputs(root: Path) -> dict[str, tuple[str, Path]]:
    """An fgo disk tier (fgo.cache.local, every namespace): action -> (output ID, index)."""
    out = {}
    for index in root.glob("*/??/*-a"):
        try:
            out[index.name[:-2]] = (index.read_text().split()[0], index)
        except (OSError, IndexError):
            continue
    return out


def wrong_entries(entries: dict[str, tuple[str, Path]], oracle: dict[str, str],
                  skip: set[str] = frozenset()) -> list[str]:
    """Actions whose output differs from the oracle's for the same action."""
    return sorted(a for a, (o, _) in entries.items()
                  if a in oracle and a not in skip and oracle[a] != o)


# ------------------------------------------------------------------ the campaign

@dataclass
class Campaign:
    lab: Any
    root: Path
    cluster: Cluster
    projects: dict[str, Path]
    oracle_sha: dict[str, str]
    oracle_cache: dict[str, str]
    template: Path          # the shared cache's local tier holding std (an fgo build)
    plain: Path             # go's own GOCACHE holding std (a plain go build)
    rows: list[dict[str, Any]] = field(default_factory=list)
    primed: str = ""        # the project whose entries the cluster tier holds

    def tier_entries(self) -> dict[str, tuple[str, Path]]:
        out: dict[str, tuple[str, Path]] = {}
        for i in range(WORKERS):
            out.update(tier_outputs(self.cluster.tier(i)))
        return out

    def clear_tier(self) -> None:
        for i in range(WORKERS):
            shutil.rmtree(self.cluster.tier(i), ignore_errors=True)
        self.primed = ""

    def build(self, project: str, out: Path, split: bool, name: str,
              shared: bool) -> tuple[subprocess.Popen[str], Path, Path]:
        """`fgo build` of PROJECT started (not waited for), in a fresh copy of a template
        GOCACHE holding std: the shared cache's local tier (SHARED), else go's own;
        (process, report, GOCACHE)."""
        gocache = self.root / f"gocache-{name}"
        shutil.rmtree(gocache, ignore_errors=True)
        shutil.copytree(self.template if shared else self.plain, gocache)
        report = self.root / f"report-{name}.json"
        report.unlink(missing_ok=True)
        opts = ["--split-large=0", "--shards", "2"] if split else []
        opts += [] if shared else ["--no-shared-cache"]
        cmd = [str(labmod.FGO), "build", "-q", "--report", str(report), "--scheduler",
               self.cluster.address, *opts, str(self.projects[project]), "--", "-o", str(out)]
        env = go_env(GOCACHE=str(gocache), FGO_LOCAL_SLOTS="0", FGO_VERIFY_CATCH=str(CATCH),
                     FGO_LEDGER=str(self.root / f"ledger-{name}.json"))
        return (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 errors="replace", env=env, start_new_session=True), report, gocache)

    def finish(self, proc: subprocess.Popen[str]) -> tuple[int | None, str]:
        try:
            _, err = proc.communicate(timeout=BUILD_TIMEOUT_S)
            return proc.returncode, err
        except subprocess.TimeoutExpired:
            with _quiet():
                os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            return None, err

    def prime(self, project: str) -> None:
        """The cluster tier holding PROJECT's entries: a build without fault publishes them."""
        if self.primed == project:
            return
        self.clear_tier()
        out = self.root / "prime.bin"
        proc, _, _ = self.build(project, out, False, "prime", True)
        code, err = self.finish(proc)
        assert code == 0 and sha256(out) == self.oracle_sha[project], err[-2000:]
        self.primed = project

    @property
    def template_actions(self) -> set[str]:
        return set(tier_outputs(self.template / "fgo"))

    def run_one(self, fault: plan.Fault) -> dict[str, Any]:
        kind = plan.KINDS[fault.kind]
        c = self.cluster
        # --- the cluster as the fault needs it
        restarted = False
        for i in range(WORKERS):
            env: dict[str, str] = {}
            if kind.env and (i == fault.worker or kind.split):  # a shard runs on either worker
                env = {"FGO_FAULT": fault.env()}
            if i == fault.worker and fault.kind == "full-disk":
                env = {"FGO_STORE": str(c.small_store())}
            restarted |= c.set_worker(i, env)
        if restarted or not c.addresses:
            c.wait()
        target_addr = c.addresses[fault.worker]
        logs = [c.fault_log(i) for i in range(WORKERS) if i == fault.worker or kind.split]
        log_before = {log: log.stat().st_size if log.exists() else 0 for log in logs}
        altered: tuple[str, Path, float, bytes, bytes] | None = None
        # the shared cache where the fault needs it, or may leave a wrong entry in it
        shared = kind.shared_cache or fault.kind in ("wrong", "wrong-q")
        if kind.shared_cache:
            self.prime(fault.project)
            altered = self.alter(fault)
        else:
            self.clear_tier()
        out = self.root / "fgo.bin"
        out.unlink(missing_ok=True)
        undo: list[Any] = []
        w = c.workers[fault.worker]
        assert w is not None

        def stop() -> None:
            os.kill(w.pid, signal.SIGSTOP)
            undo.append(lambda: os.kill(w.pid, signal.SIGCONT))

        inject = {
            "kill": lambda: w.kill(),
            "stop": stop,
            "stop-during-connect": stop,
            "scheduler-restart": c.restart_scheduler,
            "partition": lambda: (c.links.link(fault.worker, False),
                                  undo.append(lambda: c.links.link(fault.worker, True))),
            "slow-link": lambda: (c.links.rate(fault.worker, SLOW_RATE),
                                  undo.append(lambda: c.links.rate(fault.worker, hostsmod.RATE))),
        }.get(fault.kind, lambda: None)
        if fault.kind == "stop-before-connect":
            stop()
        t0 = time.monotonic()
        proc, report, gocache = self.build(fault.project, out, kind.split, "fault", shared)
        mon = Monitor(c, fault, proc, inject)
        if kind.timing != "before":
            mon.start()
        code, err = self.finish(proc)
        wall = time.monotonic() - t0
        mon.done.set()
        if mon.is_alive():
            mon.join(5)
        for u in reversed(undo):
            with _quiet():
                u()
        rep = json.loads(report.read_text()) if report.exists() else {}
        # --- did the fault hit?
        hits = [h for log in logs if log.exists() for h in log.read_text()[log_before[log]:].splitlines()]
        reasons = " ".join(rep.get("totals", {}).get("fallback_reasons", {}) or [])
        if kind.timing in ("compile", "connect"):
            injected, evidence = mon.fired, mon.note
        elif kind.env:
            injected, evidence = bool(hits), f"{len(hits)} hit(s) in the worker's fault log"
        elif fault.kind == "full-disk":
            injected, evidence = "No space left" in reasons, "ENOSPC in the report" if "No space left" in reasons else ""
        elif fault.kind == "stop-before-connect":
            injected, evidence = True, "stopped before the build started"
        else:
            injected, evidence = self.was_read(altered)
        # --- what it left, against the oracles
        v = rep.get("verification", {})
        symbols = tuple(f"{m['package']} {m['symbol']}" for m in v.get("mismatched", []) if m.get("symbol"))
        skip = {altered[0]} if altered else set()
        self.restore(altered)
        tier_wrong = wrong_entries(self.tier_entries(), self.oracle_cache, skip)
        # the head's caches without exception: a forged entry the head took in is wrong output
        local_wrong = wrong_entries({**tier_outputs(gocache / "fgo"), **go_cache_entries(gocache)},
                                    self.oracle_cache)
        binary = sha256(out)
        identical = None if binary is None else binary == self.oracle_sha[fault.project]
        obs = plan.Observation(injected, code, identical, symbols, len(tier_wrong) + len(local_wrong))
        mine = v.get("catch", {}).get("workers", {}).get(target_addr, {})
        row = {**fault.row(), "outcome": plan.classify(obs), "injected": injected,
               "evidence": evidence, "exit_code": code, "identical": identical,
               "caught": "; ".join(symbols), "tier_wrong": len(tier_wrong),
               "head_cache_wrong": len(local_wrong), "wall_s": round(wall, 2),
               "target_compiles": mine.get("compiles", 0), "target_checks": mine.get("checks", 0),
               "remote": rep.get("totals", {}).get("remote"), "local": rep.get("totals", {}).get("local"),
               "fallback_reasons": reasons[:300], "error": err.strip().splitlines()[-1][:300] if code else ""}
        shutil.rmtree(gocache, ignore_errors=True)
        # --- back to a healthy cluster for the next fault
        if fault.kind == "kill":
            c.stop_worker(fault.worker)
        if fault.kind in ("partition", "stop", "stop-before-connect", "stop-during-connect"):
            c.stop_worker(fault.worker)  # dask may have dropped it: a fresh one
        if fault.kind == "full-disk":
            c.stop_worker(fault.worker)
            c.umount()
        if fault.kind == "scheduler-restart" or code is None:
            self.restart_all()
        return row

    def restart_all(self) -> None:
        self.cluster.close()
        self.cluster.start()

    def alter(self, fault: plan.Fault) -> tuple[str, Path, float, bytes, bytes] | None:
        """A project entry on a worker's disk changed: cache-altered flips a byte of its body
        (the index no longer matches); cache-forged puts another entry's body there and an
        index naming it (consistent: only a signature or a recompile can tell)."""
        entries = self.tier_entries()
        mine = sorted(a for a in entries if a not in self.template_actions)
        if not mine:
            return None
        action = mine[int(fault.pick * len(mine))]
        output, index = entries[action]
        body = index.with_name(action + "-d")
        old_index, old_body = index.read_bytes(), body.read_bytes()
        if fault.kind == "cache-altered":
            data = bytearray(old_body)
            data[len(data) // 2] ^= 0xFF
            body.write_bytes(bytes(data))
        else:
            donor = next(entries[a] for a in sorted(entries) if a != action and entries[a][0] != output)
            new = donor[1].with_name(donor[1].name[:-2] + "-d").read_bytes()
            body.write_bytes(new)
            fields = old_index.decode().split()
            fields[0], fields[1] = hashlib.sha256(new).hexdigest(), str(len(new))
            index.write_text(" ".join(fields) + "\n")
        os.utime(index, (1, 1))  # its mtime tells whether the build touched (used) it
        return action, index, index.stat().st_mtime, old_index, old_body

    def was_read(self, altered: tuple[str, Path, float, bytes, bytes] | None) -> tuple[bool, str]:
        if altered is None:
            return False, ""
        _, index, mtime, _, _ = altered
        if not index.exists():
            return True, "the build read the entry (found damaged, deleted)"
        if index.stat().st_mtime != mtime:
            return True, "the build read the entry (used)"
        return False, "entry not read"

    def restore(self, altered: tuple[str, Path, float, bytes, bytes] | None) -> None:
        """The altered entry as it was (a forged body must not reach the next build)."""
        if altered:
            _, index, _, old_index, old_body = altered
            index.parent.mkdir(parents=True, exist_ok=True)
            index.with_name(index.name[:-2] + "-d").write_bytes(old_body)
            index.write_bytes(old_index)


def setup(lab: Any, root: Path, links: Links | None) -> Campaign:
    conftest = _load("conftest")
    split = _load("test_split")
    projects = {"hello": conftest.write_tree(root / "hello", conftest.HELLO),
                "large": conftest.write_tree(root / "large", split.large_package(LARGE_FUNCS))}
    go = str(toolchain.go_binary())
    # ONE oracle per project (plain go build, its own empty GOCACHE) and go's own template
    # cache, built while the cluster starts and builds the shared cache's template
    plain = root / "plain-gocache"
    plain_go = {name: subprocess.Popen([go, "build", "-o", str(root / f"oracle-{name}")], cwd=p,
                                       env=go_env(GOCACHE=str(root / f"oracle-gocache-{name}")),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for name, p in projects.items()}
    plain_go["template"] = subprocess.Popen([go, "build", *WARM_STD], cwd=projects["hello"],
                                            env=go_env(GOCACHE=str(plain)),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cluster = Cluster(root, links)
    cluster.start()
    template = root / "template-gocache"  # the head's local tier holding std (WARM_STD)
    proc = subprocess.run([str(labmod.FGO), "build", "-q", "--scheduler", cluster.address,
                           str(projects["hello"]), "--", *WARM_STD],
                          env=go_env(GOCACHE=str(template), FGO_LOCAL_SLOTS="0",
                                     FGO_LEDGER=str(root / "ledger-template.json")),
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    for p in plain_go.values():
        _, err = p.communicate(timeout=1800)
        assert p.returncode == 0, err
    oracle_sha = {name: sha256(root / f"oracle-{name}") for name in projects}
    oracle_cache: dict[str, str] = {}
    for name in projects:
        oracle_cache.update(go_cache_outputs(root / f"oracle-gocache-{name}"))
    camp = Campaign(lab, root, cluster, projects, oracle_sha, oracle_cache, template, plain)
    # fgo's shim and patched compiler built before the campaign (once per toolchain and
    # patch series): a build waiting for them must not reach the per-build timeout
    out = root / "warmup.bin"
    proc, _, _ = camp.build("large", out, True, "warmup", False)
    code, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0 and sha256(out) == oracle_sha["large"], err[-2000:]
    bad = wrong_entries(tier_outputs(template / "fgo"), oracle_cache)
    assert not bad, f"the template's entries differ from the oracle's: {bad}"
    return camp


def summary_meta(rows: list[dict[str, Any]], wall: float, seed: int, hosts: str | None,
                 kinds: dict[str, plan.Kind], target: int, budget: float) -> dict[str, Any]:
    wq = [{"armed": r["target_compiles"] > 0, "injected": r["injected"], "outcome": r["outcome"],
           "checks": r["target_checks"]} for r in rows if r["kind"] == "wrong-q"]
    return {"seed": seed, "target": target, "budget_s": budget, "build_timeout_s": BUILD_TIMEOUT_S,
            "q": Q, "verify_catch": CATCH, "workers": WORKERS, "campaign_wall_s": round(wall, 1),
            "emulated_hosts": hosts is None,
            "no_hosts_reason": hosts or "",
            "kinds": sorted(kinds), "tally": plan.tally(rows), "catch": plan.catch_rate(wq, Q),
            "what": "measured on real processes; hosts emulated (network namespaces + tbf links, "
                    "shared filesystem)" if hosts is None else "measured on real processes on 127.0.0.1"}


# the campaign stops itself (FGO_FAULT_BUDGET_S, per-build timeouts): pytest-timeout's 1800 s
# default would end it mid-build (the first full run ended so, its rows saved build by build)
@pytest.mark.timeout(6 * 3600)
def test_fault_campaign(benchmark, lab) -> None:
    seed = int(os.environ.get("FGO_FAULT_SEED", SEED))
    target = int(os.environ.get("FGO_FAULT_TARGET", TARGET))
    budget = float(os.environ.get("FGO_FAULT_BUDGET_S", BUDGET_S))
    why = hostsmod.unavailable()
    kinds = plan.available(why is None)
    if os.environ.get("FGO_FAULT_KINDS"):  # a campaign of some kinds only (recorded)
        kinds = {k: v for k, v in kinds.items() if k in os.environ["FGO_FAULT_KINDS"].split(",")}
    faults = plan.draw(seed, 10 * target, WORKERS, Q, kinds, MAX_AFTER)
    root = lab.tmpdir("faults")
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()

    def campaign() -> None:
        with (Links(WORKERS) if why is None else _nothing()) as links:
            camp = setup(lab, root, links)
            try:
                for f in faults:
                    injected = sum(1 for r in rows if r["injected"])
                    if injected >= target or time.monotonic() - t0 > budget:
                        break
                    try:
                        rows.append(camp.run_one(f))
                    except Exception as exc:  # noqa: BLE001 - one broken injection must not end the campaign
                        traceback.print_exc()
                        rows.append({**f.row(), "outcome": "not-injected", "injected": False,
                                     "evidence": f"campaign error: {exc!r}"[:300], "target_compiles": 0,
                                     "target_checks": 0})
                        camp.restart_all()
                    print(f"fault {f.index} {f.kind} {f.project} w{f.worker}: {rows[-1]['outcome']} "
                          f"({rows[-1]['evidence']}) {rows[-1].get('wall_s')}s", flush=True)
                    lab.save("faults", rows, **summary_meta(rows, time.monotonic() - t0, seed, why, kinds, target, budget))
            finally:
                camp.cluster.close()

    benchmark.pedantic(campaign, rounds=1, iterations=1)
    meta = summary_meta(rows, time.monotonic() - t0, seed, why, kinds, target, budget)
    lab.save("faults", rows, **meta)
    benchmark.extra_info.update({"injected": meta["tally"].get("all", {}).get("injected", 0)})
    assert rows


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
