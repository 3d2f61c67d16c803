"""Shared fixtures: real Go projects, a real dask-scheduler + dask-worker cluster."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fgo import toolchain
from fgo.report.record import remembered_cluster_path
VENV_BIN = Path(sys.executable).parent
FGO = str(VENV_BIN / "fgo")


ORACLE_GOCACHE = Path()  # set per session below


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep go's cache and fgo's stores of the test session to themselves; the identity
    oracle gets a GOCACHE of its own that no fgo build ever writes to."""
    global ORACLE_GOCACHE
    root = tmp_path_factory.mktemp("caches")
    os.environ["GOCACHE"] = str(root / "gocache")
    os.environ["FGO_STORE"] = str(root / "store")
    os.environ.setdefault("GOFLAGS", "-buildvcs=false")
    ORACLE_GOCACHE = root / "oracle-gocache"
    os.environ["FGO_LEDGER"] = str(root / "verified-splits.json")  # not the developer's ledger
    os.environ["FGO_CACHE_KEY"] = str(root / "cache.key")  # nor the developer's cache key
    from fgo.cache import trust
    trust.load_key(root / "cache.key")  # a key named must exist: the session's heads share it
    # The suite tests the distributed path: no compile runs on the head's own slots unless
    # a test asks for them (--local-slots N); a user's default is the head's cores.
    os.environ.setdefault("FGO_LOCAL_SLOTS", "0")


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


HELLO = {
    "go.mod": "module example.com/hello\n\ngo 1.22\n",
    "main.go": 'package main\n\nimport (\n\t"fmt"\n\t"example.com/hello/greet"\n)\n\n'
               'func main() { fmt.Println(greet.Hello("fgo")) }\n',
    "greet/greet.go": 'package greet\n\nimport (\n\t"strings"\n\t"example.com/hello/words"\n)\n\n'
                      'func Hello(name string) string { return words.Hi + ", " + strings.ToUpper(name) }\n',
    "words/words.go": 'package words\n\nimport _ "embed"\n\n//go:embed hi.txt\nvar Hi string\n',
    "words/hi.txt": "hello",
}


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    """A small module: three packages, an embedded file, std imports."""
    return write_tree(tmp_path / "hello", HELLO)


def run_fgo(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FGO, *args], capture_output=True, text=True, timeout=timeout, **kw)


def go_build(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(toolchain.go_binary()), "build", *args], cwd=project,
                          capture_output=True, text=True, env=toolchain.go_env(env))


def oracle_build(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The identity oracle: a plain `go build` into a GOCACHE only oracle builds use.

    Never fgo's GOCACHE: there go would find (and relink) the archives fgo itself
    produced, and a wrong archive from a worker would compare equal to itself."""
    return go_build(project, *args, env={**(env or os.environ), "GOCACHE": str(ORACLE_GOCACHE)})


def sha(path: Path) -> str:
    return toolchain.file_sha256(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scheduler_on_a_free_port(spawn: Callable[[int], subprocess.Popen[Any]], log: Path,
                             attempts: int = 3, timeout: float = 60
                             ) -> tuple[subprocess.Popen[Any], int]:
    """A scheduler SPAWN(port) started, on a port free_port found free, once LOG says it
    listens: (process, port). Another process can take that port before the scheduler
    binds it (any outgoing connection's own port is drawn from the same range: a test's
    cluster once failed to start so, its workers waiting for it until the test gave up):
    then another port."""
    for _ in range(attempts):
        port = free_port()
        proc, deadline = spawn(port), time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if log.exists() and b"Scheduler at:" in log.read_bytes():
                return proc, port
            time.sleep(0.1)
        stop_processes([proc])
    raise RuntimeError(f"dask scheduler did not start in {attempts} attempts: see {log}")


def dask_command() -> list[str]:
    """`dask scheduler` / `dask worker` in current releases; the hyphenated scripts before."""
    if (VENV_BIN / "dask").exists():
        return [str(VENV_BIN / "dask")]
    return []


def stop_processes(procs: list[subprocess.Popen], timeout: float = 10) -> None:
    """Terminate PROCS, then kill whichever has not exited within TIMEOUT seconds."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def make_certs(root: Path) -> dict[str, Path]:
    """A self-signed CA and one certificate it signed, for every party on 127.0.0.1."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    root.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (root / n for n in ("ca.key", "ca.pem", "key.pem", "req.csr",
                                                      "cert.pem"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=fgo-test-ca",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
        "-out", str(csr))
    ext = root / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-out", str(cert), "-extfile", str(ext))
    return {"ca": ca, "cert": cert, "key": key}


def tls_flags(certs: dict[str, Path]) -> list[str]:
    return ["--tls-ca-file", str(certs["ca"]), "--tls-cert", str(certs["cert"]),
            "--tls-key", str(certs["key"])]


class RealCluster:
    """`dask scheduler` and N `dask worker` processes on 127.0.0.1, each worker its own store."""

    def __init__(self, root: Path, workers: int = 2, stores: dict[int, Path] | None = None,
                 envs: dict[int, dict[str, str]] | None = None, wrap: list[str] | None = None,
                 tls: dict[str, Path] | None = None, preload: bool = False) -> None:
        """STORES/ENVS: a worker's own store directory / extra environment, by index;
        WRAP: a command prefix every worker is started under (e.g. a mount namespace);
        TLS: make_certs' files, for a cluster that speaks only TLS; PRELOAD: workers
        started with `--preload fgo.worker.service`, as the README starts them."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.tls_args = tls_flags(tls) if tls else []
        self.stores = stores or {}
        self.envs = envs or {}
        self.wrap = wrap or []
        self.preload = ["--preload", "fgo.worker.service"] if preload else []
        self._start_scheduler()
        self.workers: list[subprocess.Popen[bytes]] = []
        for i in range(workers):
            self.add_worker(i)
        self.wait_for_workers(workers)

    def _start_scheduler(self) -> None:
        def spawn(port: int) -> subprocess.Popen[bytes]:
            self.port = port
            self.address = f"{'tls' if self.tls else 'tcp'}://127.0.0.1:{port}"
            # a port an earlier test's cluster had: what fgo remembers of that cluster is not
            # this one's (a first build would connect beside go build as on a known one)
            remembered_cluster_path(self.address).unlink(missing_ok=True)
            return self._spawn("scheduler", ["--host", "127.0.0.1", "--port", str(port),
                                             "--dashboard-address", ":0", *self.tls_args,
                                             *(["--protocol", "tls"] if self.tls else [])], {})
        self.scheduler, _ = scheduler_on_a_free_port(spawn, self.root / "scheduler-0.log")

    def _spawn(self, role: str, args: list[str], env: dict[str, str],
               wrap: list[str] | None = None) -> subprocess.Popen[bytes]:
        base = dask_command()
        cmd = [*base, role, *args] if base else [str(VENV_BIN / f"dask-{role}"), *args]
        cmd = [*(wrap or []), *cmd]
        log = open(self.root / f"{role}-{len(getattr(self, 'workers', []))}.log", "wb")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **env})

    def add_worker(self, i: int) -> subprocess.Popen[bytes]:
        store = self.stores.get(i, self.root / f"store-{i}")
        w = self._spawn("worker", [self.address, "--nthreads", "1", "--no-nanny",
                                   "--host", "127.0.0.1", "--dashboard-address", ":0",
                                   *self.tls_args, *self.preload],
                        {"FGO_STORE": str(store), **self.envs.get(i, {})}, self.wrap)
        self.workers.append(w)
        return w

    def client(self, timeout: float = 60) -> Any:
        """A distributed.Client of this cluster (TLS included)."""
        from distributed import Client
        security = None
        if self.tls:
            from distributed.security import Security
            security = Security(tls_ca_file=str(self.tls["ca"]),
                                tls_client_cert=str(self.tls["cert"]),
                                tls_client_key=str(self.tls["key"]), require_encryption=True)
        return Client(self.address, timeout=timeout, security=security)

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        with self.client(timeout) as c:
            c.wait_for_workers(n, timeout=timeout)

    def __enter__(self) -> RealCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        stop_processes([*self.workers, self.scheduler])


@pytest.fixture
def real_cluster(tmp_path: Path):
    cluster = RealCluster(tmp_path, workers=2)
    try:
        yield cluster
    finally:
        cluster.close()


def gopath_project(import_path: str) -> Path | None:
    """A Debian golang-*-dev project in /usr/share/gocode, or None."""
    path = Path("/usr/share/gocode/src") / import_path
    return path if path.is_dir() else None


GOPATH_ENV = {"GO111MODULE": "off", "GOPATH": "/usr/share/gocode"}


def require_gopath(import_path: str, package: str) -> Path:
    """The corpus project, or a skip with the reason; under FGO_REQUIRE_CORPORA=1 (CI, which
    installs them) a missing corpus fails the test."""
    path = gopath_project(import_path)
    if path is None:
        why = f"{import_path} not installed (apt-get install {package}); .ci/run installs it"
        if os.environ.get("FGO_REQUIRE_CORPORA") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def which(name: str) -> str | None:
    return shutil.which(name)


def wait_until(pred, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


# --- fault injection accounting (tests/faults): one line at the end of the session ---

FAULTS = {"injected": 0, "survived": 0, "wrong": 0}


class FaultLog:
    def injected(self, n: int = 1) -> None:
        FAULTS["injected"] += n

    def outcome(self, identical: bool, n: int = 1) -> None:
        """After the build: was the result right (identical binary, or a clear error)?"""
        FAULTS["survived" if identical else "wrong"] += n


@pytest.fixture
def faults() -> FaultLog:
    return FaultLog()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if FAULTS["injected"]:
        terminalreporter.write_line(f"faults injected {FAULTS['injected']}, survived "
                                    f"{FAULTS['survived']}, wrong outputs {FAULTS['wrong']}")
