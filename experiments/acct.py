"""Where a run's CPU went, process by process: Linux process accounting (`accton`, and
`dump-acct` from Debian's acct package), which also counts the short-lived processes
(shims, compiles, the cacheprog) that /proc sampling misses.

`breakdown` is the attribution (pure): every exited process is charged to the head's
command tree (found from the head process by parent links), to a host (its worker
processes and their compiles), to the scheduler, or left out (other users' work).
`Accounting` switches accounting on around a run and reads the records back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

C_TOOLS = {"cc1", "gcc", "as", "ld", "collect2", "cgo", "asm"}
HEAD = "fgo head"                                    # the fgo process itself
HEAD_COMPILES = "head compiles (verification, local)"


@dataclass(frozen=True)
class Record:
    comm: str
    cpu_s: float   # user + sys
    pid: int
    ppid: int


def parse(dump: str) -> list[Record]:
    """dump-acct's lines (comm|version|user|sys|elapsed|uid|gid|mem|io|pid|ppid|...),
    times in centiseconds."""
    out = []
    for line in dump.splitlines():
        f = [x.strip() for x in line.split("|")]
        if len(f) < 11 or f[1] != "v3":
            continue
        out.append(Record(f[0], (float(f[2]) + float(f[3])) / 100, int(f[9]), int(f[10])))
    return out


def head_role(rec: Record, parent: Record | None) -> str:
    if rec.comm == "fgo" and (parent is None or parent.comm != "go"):
        return HEAD
    if parent is not None and parent.comm == "go" and (rec.comm == "fgo"
                                                       or rec.comm.startswith("python")):
        return "fgo cacheprog"
    if rec.comm == "compile":
        return HEAD_COMPILES
    if rec.comm in C_TOOLS:
        return "asm, cgo and C"
    return {"go": "go build", "fgo-shim": "shims", "link": "link"}.get(rec.comm, "other head")


def breakdown(records: Iterable[Record], head_parent: int, hosts: Mapping[str, set[int]],
              scheduler: int, already: Mapping[int, float] | None = None) -> dict[str, float]:
    """CPU seconds by role. HEAD_PARENT: the process that started the head (the head is its
    child `fgo`); HOSTS: each host's long-lived processes (worker, nanny); SCHEDULER: its
    pid; ALREADY: CPU the long-lived processes had spent before the run (subtracted)."""
    records = list(records)
    by_pid = {r.pid: r for r in records}
    already = already or {}
    head = {r.pid for r in records if r.comm == "fgo" and r.ppid == head_parent}
    out: dict[str, float] = {}

    def charge(role: str, seconds: float) -> None:
        out[role] = round(out.get(role, 0.0) + seconds, 2)

    def in_head(pid: int) -> bool:
        seen = 0
        while pid in by_pid and seen < 64:
            if pid in head:
                return True
            pid, seen = by_pid[pid].ppid, seen + 1
        return pid in head

    for r in records:
        seconds = max(0.0, r.cpu_s - already.get(r.pid, 0.0))
        host = next((h for h, pids in hosts.items() if r.pid in pids), None)
        parent_host = next((h for h, pids in hosts.items() if r.ppid in pids), None)
        if r.pid == scheduler:
            charge("scheduler", seconds)
        elif host is not None:
            charge(f"{host} python (worker, nanny)", seconds)
        elif parent_host is not None:
            charge(f"{parent_host} {'compiles' if r.comm == 'compile' else r.comm}", seconds)
        elif in_head(r.pid):
            charge(head_role(r, by_pid.get(r.ppid)), seconds)
    return dict(sorted(((k, v) for k, v in out.items() if v >= 0.05), key=lambda kv: -kv[1]))


def self_cpu(pids: Iterable[int]) -> dict[int, float]:
    """User + sys seconds each of PIDS has spent so far (its own, not its children's)."""
    return _cpu(pids, 11)


def self_user_sys(pids: Iterable[int]) -> tuple[float, float]:
    """User and sys seconds PIDS have spent so far, all together (their own): on this
    machine a file a worker creates costs it ~0.3-0.9 ms of kernel time while a build
    churns the disk, which only the split shows."""
    tick = os.sysconf("SC_CLK_TCK")
    user = kernel = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        user, kernel = user + int(fields[11]) / tick, kernel + int(fields[12]) / tick
    return user, kernel


def children_cpu(pids: Iterable[int]) -> dict[int, float]:
    """User + sys seconds of the children each of PIDS has waited for (a worker's
    compiles)."""
    return _cpu(pids, 13)


def _cpu(pids: Iterable[int], field: int) -> dict[int, float]:
    """/proc/PID/stat's FIELD and the one after it (utime and stime, or cutime and
    cstime; counted from after the command's name), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[pid] = (int(fields[field]) + int(fields[field + 1])) / tick
    return out


def python_tree(pid: int) -> list[int]:
    """PID and the Python processes below it: a `dask worker` is a nanny whose worker runs
    in a child process (multiprocessing's spawn); the compiles below them are not Python."""
    import psutil  # Dask's own dependency
    return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True)
                   if c.name().startswith("python"))]


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "process accounting needs root"
    missing = [t for t in ("accton", "dump-acct") if shutil.which(t) is None]
    return f"{', '.join(missing)} not found (Debian package acct)" if missing else None


class Accounting:
    """`with Accounting(path) as acct: ...`, then `acct.records()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.on = False

    def __enter__(self) -> Accounting:
        self.path.write_bytes(b"")
        # refused (a container without the capability): no records, the run goes on
        self.on = subprocess.run(["accton", str(self.path)], capture_output=True).returncode == 0
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on:
            subprocess.run(["accton", "off"], check=False, capture_output=True)

    def records(self) -> list[Record]:
        if not self.on:
            return []
        dump = subprocess.run(["dump-acct", str(self.path)], capture_output=True, text=True)
        return parse(dump.stdout)
