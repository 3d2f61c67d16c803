"""The compiler processes a worker runs: the one place on a worker that starts a process.

Each run is registered under its task's id, so that a Cancel from the head (a result it no
longer wants: a race won elsewhere, a split given up) kills it at once instead of letting
it hold a worker thread to its end. A speculative compile runs niced and only in the
worker's idle time (fgo.worker.idle); with early export the package's export data is
handed on as soon as the patched compiler has written it, while its backend still runs.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo.compiler import early_export
from fgo.worker.idle import IDLE

SPECULATIVE_NICE = 10  # a speculative compile yields the CPU to the worker's real ones
COMPILE_NICE = 10      # a worker's whole compiles yield to the worker itself (compile_nice)
NICE = shutil.which("nice") or "/usr/bin/nice"  # execs the compiler in its own place

# Niceness added to the compilers a thread starts (`nice_children`): the compiler yields the
# core, not the Python thread that waits for it (a niced thread that holds the GIL between
# its syscalls stalls every other thread of its process while the core is busy).
_children = threading.local()


def nice_children(increment: int) -> None:
    """The compilers the calling thread starts from now on run INCREMENT nicer than it."""
    _children.nice = increment


def compile_nice(setting: str | None) -> int:
    """How much nicer than its worker a whole compile runs: SETTING (FGO_COMPILE_NICE, 0 to
    19; 0 turns it off), else COMPILE_NICE. The worker's own work for a compile (taking the
    next task, answering a finished one) is short and on the path of every compile; behind
    compilers that fill the host's cores it waited for a scheduler slice at each step
    (experiment 9's dispatch over TCP). At 3 nicer, a waking worker still waited behind
    them: on two cores, the embedded cluster's dispatch was 5.0-5.3 ms at 3 and 4.3-4.4 ms
    at 10 (by hand, two cold gin builds each, --workers 2 --local-slots 0), the build no
    slower. The compilers lose nothing by it: the worker takes ~5% of their CPU, and
    niceness only shares a core with other work. Like distccd --nice, it also lets other
    work on a shared host come first."""
    try:
        value = int(setting) if setting else COMPILE_NICE
    except ValueError:
        return COMPILE_NICE
    return min(19, max(0, value))


def _niced(argv: list[str], base: int = 0) -> list[str]:
    """ARGV run BASE nicer than this process, plus what the calling thread asked for
    (`nice_children`), through nice(1): the niceness is set before the compiler starts, so
    every thread it makes has it (niceness is per thread on Linux: a setpriority after the
    start reached the compiler's first thread alone, and raced its start)."""
    increment = base + getattr(_children, "nice", 0)
    return [NICE, "-n", str(increment), *argv] if increment else argv


@dataclass
class Run:
    """A finished compiler process."""

    returncode: int
    output: bytes       # stdout and stderr, as go build captures them
    cancelled: bool = False


class Running:
    """This worker process's compiler processes, by the id of the task (or split) that
    started them."""

    def __init__(self) -> None:
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.cancelled: set[str] = set()
        self.speculative: set[str] = set()  # the keys of speculative compiles
        self.closed_out: set[str] = set()   # those killed as their worker closed
        self.lock = threading.Lock()

    def add(self, key: str, proc: subprocess.Popen[bytes], speculative: bool = False) -> bool:
        """Register PROC under KEY (a SPECULATIVE compile's or not); False (and PROC killed)
        if KEY was cancelled already."""
        with self.lock:
            if key in self.cancelled:
                proc.kill()
                return False
            self.procs.setdefault(key, []).append(proc)
            if speculative:
                self.speculative.add(key)
            return True

    def remove(self, key: str, proc: subprocess.Popen[bytes]) -> None:
        with self.lock:
            procs = self.procs.get(key, [])
            if proc in procs:
                procs.remove(proc)
            if not procs:
                self.procs.pop(key, None)
                self.speculative.discard(key)

    def cancel(self, key: str) -> bool:
        """Kill what runs under KEY (and whatever starts under it later); whether anything
        ran."""
        with self.lock:
            self.cancelled.add(key)
            procs = list(self.procs.get(key, []))
        for proc in procs:
            try:
                proc.kill()
            except OSError:
                pass
        return bool(procs)

    def kill_speculations(self) -> int:
        """The worker is closing: kill its speculative compiles (each runs in a process group
        of its own, which a signal to the worker's group does not reach); how many. Each is
        answered as cancelled, never with the killed compiler's exit status, which a head
        would take for the compile's own failure. Real compiles run on: a head may still
        take their results. Nothing is left set: several workers can share one process
        (an in-process cluster), and one's close must not refuse another's speculations."""
        with self.lock:
            self.cancelled.update(self.speculative)
            self.closed_out.update(self.speculative)
            procs = [p for key in self.speculative for p in self.procs.get(key, [])]
        for proc in procs:
            try:
                proc.kill()
            except OSError:
                pass
        return len(procs)

    def wait_cancelled(self, key: str, seconds: float) -> bool:
        """Wait SECONDS, or less if KEY is cancelled meanwhile; whether it was."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.was_cancelled(key):
                return True
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return self.was_cancelled(key)

    def was_cancelled(self, key: str) -> bool:
        with self.lock:
            return key in self.cancelled

    def reason(self, key: str) -> str:
        """Why KEY's run was cancelled, for the head's report."""
        with self.lock:
            return "the worker is closing" if key in self.closed_out else "cancelled by the head"


RUNNING = Running()


def run(key: str, argv: list[str], cwd: str, env: dict[str, str], *,
        speculative: str | None = None, early: str | None = None,
        on_export: Callable[[bytes, float], None] | None = None, real: bool = True,
        nice: int = 0) -> Run:
    """Run the compiler ARGV in CWD under task KEY, NICE nicer than this process.
    SPECULATIVE: the -o a speculative compile writes (it runs SPECULATIVE_NICE nicer, in
    idle time only). EARLY/ON_EXPORT: hand the export
    data written to EARLY to ON_EXPORT while the backend runs. REAL: count it as one of
    the worker's real compiles (a shard or leader counts once for its whole run).

    A speculative compile runs in a process group of its own: should the worker die while
    the compile is stopped (fgo.worker.idle), the kernel finds a newly orphaned group with
    a stopped member and sends it SIGHUP and SIGCONT, which ends the compiler (else it
    stayed stopped forever)."""
    if real and not speculative:
        IDLE.real_started()
    try:
        proc = subprocess.Popen(_niced(argv, SPECULATIVE_NICE if speculative else nice),
                                cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                process_group=0 if speculative else None)
        if not RUNNING.add(key, proc, speculative=bool(speculative)):
            proc.communicate()
            return Run(proc.returncode, b"", cancelled=True)
        try:
            if speculative:
                IDLE.spec_started(speculative, proc.pid)
            out = _wait(proc, early, on_export)
        finally:
            RUNNING.remove(key, proc)
        return Run(proc.returncode, out, cancelled=RUNNING.was_cancelled(key))
    finally:
        if speculative:
            IDLE.spec_ended(speculative)
        elif real:
            IDLE.real_ended()


def start(key: str, argv: list[str], cwd: str, env: dict[str, str], nice: int = 0
          ) -> subprocess.Popen[bytes] | None:
    """Start ARGV under KEY, NICE nicer than this process, for a caller that watches it
    itself (a split's leader); None if KEY was cancelled. The caller `finish`es it."""
    proc = subprocess.Popen(_niced(argv, nice), cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    return proc if RUNNING.add(key, proc) else None


def finish(key: str, proc: subprocess.Popen[bytes]) -> Run:
    try:
        out, _ = proc.communicate()
    finally:
        RUNNING.remove(key, proc)
    return Run(proc.returncode, out, cancelled=RUNNING.was_cancelled(key))


def _wait(proc: subprocess.Popen[bytes], early: str | None,
          on_export: Callable[[bytes, float], None] | None) -> bytes:
    if early is None or on_export is None:
        out, _ = proc.communicate()
        return out
    # stdout is drained by a thread: a chatty compile must not block on a full pipe
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()),  # type: ignore[union-attr]
                              name="fgo-compile-output", daemon=True)
    reader.start()
    written = early_export.when_written(proc, early)
    if written is not None:
        on_export(*written)
    proc.wait()
    reader.join()
    return b"".join(chunks)


# --- the patched compiler, for early export data and automatic splits -----------------------

_on_demand: Any = None            # fgo.compiler.patched.OnDemand, made on first use
_on_demand_lock = threading.Lock()


def on_demand() -> Any:
    """This worker's patched compiler on demand (fgo.compiler.patched.OnDemand, never
    waited for), or None without a patch series here."""
    global _on_demand
    with _on_demand_lock:
        if _on_demand is None:
            from fgo.compiler import patched
            try:
                _on_demand = patched.OnDemand(wait=False)
            except Exception:  # noqa: BLE001  (no patch series here: no early export data)
                return None
    return _on_demand


def patched_compiler() -> Path | None:
    """The patched compiler if this worker has it; else None, and it is built once in the
    background, in a niced process of its own (a compile never waits for it: it runs
    stock, without early export; an automatic split's shard is refused)."""
    compiler = on_demand()
    return compiler.get() if compiler is not None else None
