"""Where a process's CPU goes, by kind: a system-wide `perf record -g` around a run, each
sample of the processes asked about charged to what it was doing (Python or the compiler in
user space, or the system call, page fault or interrupt it was in).

experiment 9 uses it for the workers' own CPU per remote compile: process accounting
(experiments/acct.py) gives its user and kernel totals, this says which kernel work (writing
a staged output, files created, directories made, the network) the kernel part is. Sampled
(perf at FREQ_HZ): a figure is as good as its sample count.

`parse` and `kind` are pure; `Recorder` runs perf (absent perf: nothing recorded).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Self

FREQ_HZ = 999

# system call -> the kind it is charged to (a syscall not named here: "other syscalls")
SYSCALLS = {
    "write": "write (files, staged outputs)", "pwrite64": "write (files, staged outputs)",
    "read": "read (files)", "pread64": "read (files)",
    "openat": "open and create files", "open": "open and create files",
    "mkdir": "make directories", "mkdirat": "make directories",
    "rename": "rename, link, unlink", "renameat2": "rename, link, unlink",
    "link": "rename, link, unlink", "linkat": "rename, link, unlink",
    "unlink": "rename, link, unlink", "unlinkat": "rename, link, unlink",
    "newfstatat": "stat", "statx": "stat", "newfstat": "stat", "newstat": "stat",
    "newlstat": "stat", "access": "stat", "faccessat2": "stat",
    "recvfrom": "network", "sendto": "network", "recvmsg": "network", "sendmsg": "network",
    "epoll_wait": "network", "epoll_ctl": "network", "poll": "network",
    "munmap": "memory (mmap, munmap, brk)", "mmap": "memory (mmap, munmap, brk)",
    "brk": "memory (mmap, munmap, brk)", "mremap": "memory (mmap, munmap, brk)",
    "vfork": "start processes (vfork, wait4, pipes)", "clone3": "start processes (vfork, wait4, pipes)",
    "wait4": "start processes (vfork, wait4, pipes)", "pipe2": "start processes (vfork, wait4, pipes)",
    "futex": "futex", "close": "close",
}
USER = "user space (Python)"
PAGE_FAULTS = "page faults"
OTHER_KERNEL = "other kernel (interrupts, scheduling)"
OTHER_SYSCALLS = "other syscalls"


def _syscall(frame: str) -> str | None:
    """The system call a kernel FRAME is the entry of (`__x64_sys_write`, `__do_sys_brk`,
    `ksys_write`), else None."""
    for prefix in ("__x64_sys_", "__do_sys_", "__se_sys_", "ksys_"):
        if frame.startswith(prefix):
            return frame[len(prefix):]
    return None


def kind(stack: list[str], kernel: list[bool]) -> str:
    """What a sample whose call chain is STACK (leaf first) was doing; KERNEL says which
    frames are the kernel's (perf marks them by address)."""
    if not any(kernel):
        return USER
    for frame, in_kernel in zip(stack, kernel):
        if in_kernel and (name := _syscall(frame)) is not None:
            return SYSCALLS.get(name, OTHER_SYSCALLS)
    if any(k and "page_fault" in f for f, k in zip(stack, kernel)):
        return PAGE_FAULTS
    if any(k and f.startswith(("entry_SYSCALL", "do_syscall")) for f, k in zip(stack, kernel)):
        return OTHER_SYSCALLS
    return OTHER_KERNEL


def parse(script: str, pids: Iterable[int]) -> Counter[str]:
    """Samples of PIDS by kind, from `perf script -F pid,ip,sym` output: a header line per
    sample (its pid), then a tab-indented line per frame, `<address> <symbol>`."""
    wanted = {int(p) for p in pids}
    counts: Counter[str] = Counter()
    pid: int | None = None
    stack: list[str] = []
    kernel: list[bool] = []

    def done() -> None:
        if pid in wanted and stack:
            counts[kind(stack, kernel)] += 1

    for line in script.splitlines():
        if not line.strip():
            continue
        if not line.startswith("\t"):  # a sample's header: its pid, right-aligned
            done()
            try:
                pid = int(line.split()[0].split("/")[0])
            except ValueError:
                pid = None
            stack, kernel = [], []
            continue
        parts = line.split(None, 1)
        address = parts[0]
        stack.append(parts[1].strip() if len(parts) > 1 else "[unknown]")
        kernel.append(address.lower().startswith("ffff"))
    done()
    return counts


def per_unit_ms(counts: Counter[str], units: int, freq: int = FREQ_HZ) -> dict[str, float]:
    """COUNTS (samples at FREQ Hz) as milliseconds per one of UNITS (a remote compile),
    largest first."""
    return {k: round(1000 * n / freq / units, 2) for k, n in counts.most_common()} if units else {}


class Recorder:
    """`perf record -a -g` into OUT while the block runs; `counts(pids)` afterwards (OUT is
    the caller's to remove). Without perf (or permission to record every CPU) it records
    nothing and counts None."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.perf = shutil.which("perf")
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        if self.perf is not None:
            self.proc = subprocess.Popen(
                [self.perf, "record", "-F", str(FREQ_HZ), "-a", "-g", "-q", "-o",
                 str(self.out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def counts(self, pids: Iterable[int]) -> Counter[str] | None:
        if self.proc is None or self.proc.returncode not in (0, -signal.SIGINT) \
                or not self.out.exists():
            return None
        script = subprocess.run([str(self.perf), "script", "-i", str(self.out), "-F",
                                 "pid,ip,sym"], capture_output=True, text=True,
                                errors="replace", check=False)
        return parse(script.stdout, pids) if script.returncode == 0 else None
