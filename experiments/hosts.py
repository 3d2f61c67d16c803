"""Worker hosts emulated on this machine, for the scale-out experiment (test_8_scaleout.py).

`Hosts(cores=(0, 1), ...)` is a context manager. Each host is a network namespace joined to a
bridge in the root namespace by a veth pair whose two ends are limited to RATE by tbf (DAS-5's
1 Gb/s Ethernet; `netem` is not in this kernel), one core (taskset), and an installation of its
own run through isolate.sh (tests/faults/isolation.py, the fault suite's no-shared-filesystem
worker): it shares nothing with the head node but the network. `Hosts.cluster()` starts a
`dask scheduler` in the root namespace on the bridge's address (pinned to the head's core) and
one `dask worker --nthreads 1 --nworkers 1` per host, with empty stores and caches, and stops
them all afterwards.

Names carry the owner's pid (unique per run; a run killed before its cleanup is cleaned up by
the next one). Leaving the context removes every process, namespace, veth and the bridge, also
after an error or SIGTERM. Only addresses inside namespaces made here carry traffic.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
RATE = "1gbit"            # DAS-5's Ethernet
BURST = "512kb"           # >= rate / HZ and several 64 kB GSO packets: the rate holds
NS_PREFIX, BRIDGE_PREFIX, VETH_PREFIX = "fgoh-", "fgob", "fgov"
SUBNET = "10.77.{}.0/24"


def _isolation() -> Any:
    """tests/faults/isolation.py: the one way to run a worker that shares no filesystem."""
    path = REPO / "tests" / "faults" / "isolation.py"
    spec = importlib.util.spec_from_file_location("fgo_test_isolation", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


isolation = _isolation()


# ------------------------------------------------------------ decisions (pure)

def names(owner: int, index: int) -> tuple[str, str]:
    """(network namespace, host-side veth) of host INDEX of run OWNER (a pid); <= 15 chars."""
    return f"{NS_PREFIX}{owner}-{index}", f"{VETH_PREFIX}{owner}x{index}"


def bridge_name(owner: int) -> str:
    return f"{BRIDGE_PREFIX}{owner}"


def owner_of(name: str) -> int | None:
    """The pid in the name of a namespace or link made by this module, or None."""
    m = re.fullmatch(rf"(?:{NS_PREFIX}(\d+)-\d+|{BRIDGE_PREFIX}(\d+)|{VETH_PREFIX}(\d+)x\d+)", name)
    return int(next(g for g in m.groups() if g)) if m else None


def pick_subnet(owner: int, used: set[int]) -> int:
    """The third octet of a 10.77.X.0/24 no address of this machine is in."""
    for step in range(254):
        x = 1 + (owner + step) % 254
        if x not in used:
            return x
    raise RuntimeError("no free 10.77.X.0/24 subnet")


def measured_nothing(row: dict[str, Any], split_wanted: bool = False,
                     max_fallback_share: float = 0.1) -> list[str]:
    """Why an fgo run on the emulated hosts did not measure what it claims (empty: it did):
    ROW is its report's totals (remote, local, split, fallbacks, fallback_reasons). Workers
    that cannot read what they are sent (a path instead of bytes, a store that refuses) make
    every compile fall back to the head: the build still succeeds, on the head alone."""
    why = []
    if not row.get("remote") and not row.get("split"):  # a split's shards ran there
        why.append("no compile ran on the emulated hosts")
    reasons = row.get("fallback_reasons") or {}
    if reasons.get("store-error"):
        why.append(f"{reasons['store-error']} compile(s) fell back with store-error")
    compiles = (row.get("remote") or 0) + (row.get("local") or 0) + (row.get("split") or 0)
    if compiles and (row.get("fallbacks") or 0) > max_fallback_share * compiles:
        why.append(f"{row['fallbacks']} of {compiles} compiles fell back to the head: {reasons}")
    if split_wanted and not row.get("split"):
        why.append("a split was asked for and none ran")
    return why


def tbf(dev: str, rate: str) -> list[str]:
    return ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", BURST,
            "latency", "10ms"]


# ------------------------------------------------------------ commands

def add_bridge(bridge: str, gateway: str) -> None:
    """The head's side: a bridge at GATEWAY/24 that every host's veth joins."""
    _run(["ip", "link", "add", bridge, "type", "bridge"])
    _run(["ip", "addr", "add", f"{gateway}/24", "dev", bridge])
    _run(["ip", "link", "set", bridge, "up"])


def add_namespace(ns: str, veth: str, bridge: str, address: str) -> None:
    """Network namespace NS behind a veth pair (VETH on BRIDGE, eth0 inside at ADDRESS/24)."""
    _run(["ip", "netns", "add", ns])
    _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    _run(["ip", "link", "set", veth, "master", bridge, "up"])
    _run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"])
    _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    _run(["ip", "-n", ns, "link", "set", "lo", "up"])


def _run(cmd: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def unavailable() -> str | None:
    """Why hosts cannot be emulated here (one reason), or None."""
    if os.geteuid() != 0:
        return "emulated hosts need root (ip netns, veth pairs, tc)"
    for tool in ("ip", "tc", "taskset", "unshare"):
        if shutil.which(tool) is None:
            return f"emulated hosts need {tool}, which is not installed"
    probe = f"{NS_PREFIX}{os.getpid()}-probe"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"no network namespaces here: {made.stderr.strip()}"
    _run(["ip", "netns", "del", probe], check=False)
    return isolation.unavailable()


def netns_pids(ns: str) -> list[int]:
    proc = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in proc.stdout.split()]


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _delete_netns(ns: str) -> None:
    for _ in range(50):  # a killed process leaves the namespace once it is reaped
        pids = netns_pids(ns)
        if not pids:
            break
        _kill_all(pids)
        time.sleep(0.1)
    _run(["ip", "netns", "del", ns], check=False)


def remove_stale() -> list[str]:
    """Namespaces and links of earlier runs whose process is gone (killed before cleanup)."""
    removed = []
    for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        owner = owner_of(ns)
        if owner is not None and not _alive(owner):
            _delete_netns(ns)
            removed.append(ns)
    for line in _run(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
        m = re.match(r"\d+: ([^:@]+)", line)
        owner = owner_of(m.group(1)) if m else None
        if m and owner is not None and not _alive(owner):
            _run(["ip", "link", "del", m.group(1)], check=False)
            removed.append(m.group(1))
    return removed


def used_subnets() -> set[int]:
    out = _run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    return {int(x) for x in re.findall(r"inet 10\.77\.(\d+)\.", out)}


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + sys seconds of PIDS and of their children already waited for (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _dask() -> list[str]:
    return [str(VENV_BIN / "dask")]


# ------------------------------------------------------------ hosts

@dataclass
class Host:
    index: int
    core: int
    netns: str
    veth: str
    address: str
    install: Path


@dataclass
class Cluster:
    """A running scheduler and one worker per host (see Hosts.cluster)."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    hosts: list[Host]

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the scheduler and of each host's processes (its compiles
        included once its worker has waited for them)."""
        return {"scheduler": cpu_seconds([self.scheduler.pid]),
                **{f"host{h.index}": cpu_seconds(netns_pids(h.netns)) for h in self.hosts}}


@dataclass
class Hosts:
    """CORES: one single-core host per entry; HEAD_CORE: where the scheduler runs; WORKDIR:
    the hosts' installations and logs; HIDE: the head's directories the hosts must not
    see besides those isolation.head_dirs names (projects, outputs)."""

    cores: Sequence[int]
    workdir: Path
    head_core: int = 0
    rate: str = RATE
    hide: Sequence[Path] = ()
    owner: int = field(default_factory=os.getpid)
    hosts: list[Host] = field(default_factory=list)
    bridge: str = ""
    gateway: str = ""
    link_probe: dict[str, float] = field(default_factory=dict)  # the last probe_link
    _previous_sigterm: Any = None

    def __enter__(self) -> Hosts:
        why = unavailable()
        if why:
            raise RuntimeError(why)
        self._previous_sigterm = _exit_on_sigterm()
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _create(self) -> None:
        remove_stale()
        x = pick_subnet(self.owner, used_subnets())
        self.bridge = bridge_name(self.owner)
        self.gateway = f"10.77.{x}.1"
        add_bridge(self.bridge, self.gateway)
        for i, core in enumerate(self.cores):
            ns, veth = names(self.owner, i)
            host = Host(i, core, ns, veth, f"10.77.{x}.{10 + i}", self.workdir / f"host{i}")
            self.hosts.append(host)
            add_namespace(ns, veth, self.bridge, host.address)
            _run(tbf(veth, self.rate))                                   # head -> host
            _run(["ip", "netns", "exec", ns, *tbf("eth0", self.rate)])   # host -> head
            isolation.make_install(host.install)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    def destroy(self) -> None:
        """Every process in the hosts' namespaces killed; namespaces, veths, bridge deleted.
        Each step runs whatever the others did."""
        try:
            for h in self.hosts:
                _delete_netns(h.netns)
                _run(["ip", "link", "del", h.veth], check=False)  # gone with its peer, normally
            if self.bridge:
                _run(["ip", "link", "del", self.bridge], check=False)
        finally:
            self.hosts = []
            self.bridge = ""
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None

    def leftovers(self, owner: int | None = None) -> list[str]:
        """Namespaces and links of OWNER's run that still exist (for the cleanup check)."""
        owner = self.owner if owner is None else owner
        found = [line.split()[0] for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines()
                 if line.split() and owner_of(line.split()[0]) == owner]
        for line in _run(["ip", "-o", "link", "show"], check=False).stdout.splitlines():
            m = re.match(r"\d+: ([^:@]+)", line)
            if m and owner_of(m.group(1)) == owner:
                found.append(m.group(1))
        return found

    def probe_link(self, index: int, mbytes: int = 64) -> dict[str, Any]:
        """Goodput (Gbit/s) of one TCP stream from the head to host INDEX and back, as the
        emulated link carries it (tbf, TCP and Python's own cost included)."""
        h = self.hosts[index]
        inside = ["ip", "netns", "exec", h.netns]
        self.link_probe = {"host": index, "mbytes": mbytes,
                           "to_host_gbit_s": _stream(inside, [], h.address, mbytes),
                           "from_host_gbit_s": _stream([], inside, self.gateway, mbytes)}
        return self.link_probe

    def check_isolation(self) -> None:
        """Each host, as its worker runs (same namespaces and mounts), must not see a file the
        head has just written in its temp directory (as fgo's host token is) nor anything of
        the head's /tmp, and must still run this fgo. Raises if not: a worker that shares the
        head's files is sent paths, not bytes, and is no other host."""
        hide = isolation.head_dirs(self.hide)
        with tempfile.NamedTemporaryFile("w", prefix="fgo-host-token-", dir=tempfile.gettempdir()) as tok:
            tok.write("head")
            tok.flush()
            marker = Path("/tmp") / f"fgo-hosts-probe-{self.owner}"
            marker.write_text("head")
            try:
                for h in self.hosts:
                    probe = ("import os, sys, fgo; "
                             f"sys.exit(3 if os.path.exists({tok.name!r}) else "
                             f"4 if os.path.exists({str(marker)!r}) else 0)")
                    cmd = ["ip", "netns", "exec", h.netns, *isolation.isolate_prefix(h.install, hide),
                           sys.executable, "-c", probe]
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                          env={**os.environ, **isolation.worker_env()})
                    if proc.returncode != 0:
                        what = {3: "reads the head's temp directory", 4: "shares the head's /tmp"}
                        raise RuntimeError(f"host{h.index} is not isolated: "
                                           f"{what.get(proc.returncode, proc.stderr[-600:])}")
            finally:
                marker.unlink(missing_ok=True)

    @contextlib.contextmanager
    def cluster(self, timeout: float = 120) -> Iterator[Cluster]:
        """A scheduler on the bridge (head core) and a worker per host, all cold: empty
        stores, GOCACHE, home and temp directories. Stopped (and their namespaces emptied of
        processes) on leaving."""
        for h in self.hosts:
            isolation.empty_scratch(h.install)   # store, cluster tier, GOCACHE, home, tmp
            left = [d for d in isolation.SCRATCH if any((h.install / d).iterdir())]
            assert not left, f"host{h.index}: {left} not empty for a fresh cluster"
        self.check_isolation()
        port = _free_port(self.gateway)
        address = f"tcp://{self.gateway}:{port}"
        logs = self.workdir / "logs"
        procs: list[subprocess.Popen[bytes]] = []
        try:
            scheduler = _spawn(["taskset", "-c", str(self.head_core), *_dask(), "scheduler",
                                "--host", self.gateway, "--port", str(port), "--no-dashboard"],
                               logs / "scheduler.log", {})
            procs.append(scheduler)
            hide = isolation.head_dirs(self.hide)
            workers = []
            for h in self.hosts:
                cmd = ["ip", "netns", "exec", h.netns, *isolation.isolate_prefix(h.install, hide),
                       "taskset", "-c", str(h.core), *_dask(), "worker", address,
                       "--nthreads", "1", "--nworkers", "1", "--host", h.address, "--no-dashboard",
                       "--preload", "fgo.worker.service"]
                workers.append(_spawn(cmd, logs / f"worker{h.index}.log", isolation.worker_env()))
            procs += workers
            _wait_for_workers(address, len(self.hosts), timeout, procs, logs)
            yield Cluster(address, scheduler, workers, list(self.hosts))
        finally:
            _stop(procs)
            for h in self.hosts:
                _kill_all(netns_pids(h.netns))


_SINK = """
import socket, sys, time
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); n = 0; t = None
while (d := c.recv(1 << 20)):
    t = t or time.perf_counter(); n += len(d)
print(n * 8 / 1e9 / (time.perf_counter() - t))
"""
_SOURCE = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2]))); buf = bytes(1 << 20)
for _ in range(int(sys.argv[3])): c.sendall(buf)
c.close()
"""


def _stream(sink_prefix: list[str], source_prefix: list[str], sink_address: str,
            mbytes: int) -> float:
    """Gbit/s received by a sink (run under SINK_PREFIX, listening on SINK_ADDRESS) from
    a source under SOURCE_PREFIX sending MBYTES MiB."""
    sink = subprocess.Popen([*sink_prefix, sys.executable, "-c", _SINK, sink_address],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = sink.stdout.readline().strip()
        subprocess.run([*source_prefix, sys.executable, "-c", _SOURCE, sink_address, port,
                        str(mbytes)], check=True, timeout=120)
        out, _ = sink.communicate(timeout=60)
        return round(float(out), 3)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()


def _exit_on_sigterm() -> Any:
    """SIGTERM raises SystemExit (so the cleanup runs); the previous handler, to restore."""
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                start_new_session=True)


def _stop(procs: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """Each process group terminated, then killed if it has not exited within TIMEOUT."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def _wait_for_workers(address: str, n: int, timeout: float, procs: list[subprocess.Popen[bytes]],
                      logs: Path) -> None:
    from distributed import Client
    try:
        with Client(address, timeout=timeout) as c:
            c.wait_for_workers(n, timeout=timeout)
    except Exception as exc:
        dead = [p.args for p in procs if p.poll() is not None]
        tails = {f.name: f.read_text(errors="replace")[-600:] for f in sorted(logs.glob("*.log"))}
        raise RuntimeError(f"the emulated cluster did not come up ({exc}); exited: {dead}; "
                           f"logs: {tails}") from None
