"""Every command line README.md shows is run here, and does what the README says.

A command line is a line of a ```sh block, or a `$ ` line of a ```console block
(then the lines after it, up to the next `$`, are its shown output), plus the
alternative spellings a comment offers (`# or: dask scheduler --port 8786`).
`test_the_readme_shows_only_tested_commands` fails when the README shows a
command this file does not run, or this file runs one the README no longer
shows, so the two cannot drift apart.

The commands run as written, through bash, with the venv's bin first on PATH;
only placeholders are substituted: PROJECT and `.` (a copy of the example with a
./cmd/app), HEAD:8786 (a real local `dask-scheduler`), /tmp/NAME (a temporary
directory).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (VENV_BIN, RealCluster, require_gopath, scheduler_on_a_free_port,
                      stop_processes, wait_until)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SUMMARY = re.compile(r"^fgo: \d+ remote, \d+ local.*, \d+ cached, \d+ split.*; [\d.]+ MB sent; "
                     r"[\d.]+s$", re.M)


# ----------------------------------------------------------- what the README shows

def readme_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command line, shown output lines) for every command line of TEXT."""
    out: list[tuple[str, list[str]]] = []
    lang = None
    for line in text.splitlines():
        if line.startswith("```"):
            lang = line[3:].strip() if lang is None else None
            continue
        if lang == "sh" and line.strip() and not line.lstrip().startswith("#"):
            command, _, comment = line.partition("  #")
            out.append((command.strip(), []))
            alternative = comment.strip().removeprefix("or:").strip() if "or:" in comment else ""
            if alternative:  # "dask worker ..." stands for the same arguments
                words, main = alternative.split(), command.split()
                if words[-1] == "...":
                    args = main[1:] if main[0].startswith("dask-") else main[2:]
                    alternative = " ".join(words[:-1] + args)
                out.append((alternative, []))
        elif lang == "console":
            if line.startswith("$ "):
                out.append((line[2:].partition("  #")[0].strip(), []))
            elif out and line.strip():
                out[-1][1].append(line)
    return out


def shown_output_pattern(line: str) -> re.Pattern[str] | None:
    """A shown output line as a pattern: numbers vary, `...` and live lines are skipped."""
    if line.startswith(" ") or "..." in line or "<- live" in line:
        return None
    pattern = re.escape(line.strip())
    pattern = re.sub(r"\d+(?:\\\.\d+)?(?:\\ \d+(?:\\\.\d+)?)*", r"[\\d. ]+", pattern)
    pattern = re.sub(r"(?:\\ )+", r"\\s+", pattern)
    pattern = pattern.replace(r"cost\s+model", r"(?:cost\s+model|last\s+build)")
    return re.compile(pattern)


def assert_shows(output: str, shown: list[str]) -> None:
    """Each shown line (as a pattern) matches an output line, in order."""
    lines = output.splitlines()
    i = 0
    for want in filter(None, map(shown_output_pattern, shown)):
        while i < len(lines) and not want.fullmatch(lines[i].strip()):
            i += 1
        assert i < len(lines), f"README shows a line matching {want.pattern!r}; got:\n{output}"
        i += 1


# The README's commands, grouped by the test that runs them.
SETUP = ("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
         ".venv/bin/fgo build tests/data/hello -- -o /tmp/hello && /tmp/hello")
TEST_COMMAND = ".venv/bin/pytest tests/ experiments/ --benchmark --quick"
EXAMPLES = [
    "fgo build --split-large .",
    "fgo build . -- -o bin/app ./cmd/app",
    "fgo build --check --report r.json . -- -a",
]
ETCD = ("GO111MODULE=off GOPATH=/usr/share/gocode fgo build "
        "/usr/share/gocode/src/go.etcd.io/etcd -- -o /tmp/etcd")
CLUSTER = [
    "dask-scheduler --port 8786",
    "dask scheduler --port 8786",
    "dask-worker tcp://HEAD:8786 --nthreads 1 --preload fgo.worker.service --nworkers $(nproc)",
    "dask worker tcp://HEAD:8786 --nthreads 1 --preload fgo.worker.service --nworkers $(nproc)",
    "fgo build --scheduler tcp://HEAD:8786 PROJECT -- -o app",
    # DAS-5: the same commands under prun, which exists only there
    "module load prun",
    "dask-scheduler --port 8786 &",
    ("prun -v -NUMBER_OF_WORKERS -np NUMBER_OF_NODES dask-worker tcp://HEAD:8786 --nthreads 1 "
     "--preload fgo.worker.service"),
    "fgo build --scheduler tcp://HEAD:8786 --local-slots 0 --split-large PROJECT",
]
SHARED_CACHE = 'GOCACHEPROG="fgo cacheprog --scheduler tcp://HEAD:8786" go test ./...'
WALKTHROUGH = [
    "fgo plan tests/data/hello",
    "fgo build --trace trace.json --report report.json tests/data/hello -- -a -o /tmp/hello",
    "fgo build tests/data/hello -- -o /tmp/hello",
]


def test_the_readme_shows_only_tested_commands() -> None:
    shown = [c for c, _ in readme_commands(README.read_text())]
    tested = [SETUP, TEST_COMMAND, *EXAMPLES, ETCD, *CLUSTER, SHARED_CACHE, *WALKTHROUGH]
    assert sorted(set(shown) - set(tested)) == [], "README commands no test runs"
    assert sorted(set(tested) - set(shown)) == [], "tested commands the README no longer shows"


def test_the_setup_commands_are_what_ci_runs() -> None:
    """The install half of the setup line and the test command are what .ci/run does on
    every run, from nothing (test_setup runs the rest of the setup line)."""
    install = SETUP.split(" && .venv/bin/fgo")[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv" in ci and ".venv/bin/pip install -q -e '.[test]'" in ci
    assert install == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"
    ci_test = next(line.split() for line in ci.splitlines() if line.startswith(".venv/bin/pytest"))
    assert set(TEST_COMMAND.split()) <= set(ci_test), (TEST_COMMAND, ci_test)


# ----------------------------------------------------------- running them

@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example, with a ./cmd/app beside it (the README's `-o bin/app ./cmd/app`)."""
    dest = tmp_path / "project"
    shutil.copytree(ROOT / "tests" / "data" / "hello", dest)
    app = dest / "cmd" / "app" / "main.go"
    app.parent.mkdir(parents=True)
    app.write_text('package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello/greet"\n)\n\n'
                   'func main() { fmt.Println(greet.Hello("app")) }\n')
    return dest


def run(command: str, cwd: Path, tmp: Path, timeout: float = 900, **subst: str) -> subprocess.CompletedProcess[str]:
    """COMMAND as the README shows it, through bash, placeholders substituted."""
    for name in ("hello", "etcd"):
        command = command.replace(f"/tmp/{name}", str(tmp / name))
    for placeholder, value in subst.items():
        command = command.replace(placeholder, value)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("FGO_LOCAL_SLOTS", None)  # the README shows what a user sees: fgo's defaults
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stderr


def test_setup(tmp_path: Path) -> None:
    command = ".venv/bin/fgo" + SETUP.split(" && .venv/bin/fgo", 1)[1]
    proc = run(command.replace(".venv/bin/", f"{VENV_BIN}/"), ROOT, tmp_path)
    assert SUMMARY.search(ok(proc))
    assert proc.stdout == "hello, FGO\n"


def test_examples(project: Path, tmp_path: Path) -> None:
    split, app, check = EXAMPLES
    assert SUMMARY.search(ok(run(split, project, tmp_path)))  # the design card's command
    assert subprocess.run([project / "hello"], capture_output=True, text=True).stdout == "hello, FGO\n"

    ok(run(app, project, tmp_path))
    assert subprocess.run([project / "bin" / "app"], capture_output=True,
                          text=True).stdout == "hello, APP\n"

    ok(run(check, project, tmp_path))
    report = json.loads((project / "r.json").read_text())
    checks = report["checks"]
    assert checks and all(c["ok"] for c in checks), checks
    assert any(c["what"] == "binary" for c in checks)


def test_etcd_example(tmp_path: Path) -> None:
    require_gopath("go.etcd.io/etcd", "golang-etcd-server-dev")
    assert SUMMARY.search(ok(run(ETCD, tmp_path, tmp_path, timeout=1200)))
    version = subprocess.run([tmp_path / "etcd", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "etcd Version" in version.stdout


def test_cluster_section(project: Path, tmp_path: Path) -> None:
    """Both spellings of both dask commands start a working cluster on 127.0.0.1; fgo
    builds on it (plain, and the design card's --split-large PROJECT)."""
    from distributed import Client

    procs: list[subprocess.Popen[str]] = []

    def start(command: str, port: int, log: str) -> subprocess.Popen[str]:
        command = command.replace("HEAD:8786", f"127.0.0.1:{port}").replace(
            "--port 8786", f"--port {port}")
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
        # --host/--no-dashboard keep the test's cluster on loopback and without a dashboard.
        extra = " --host 127.0.0.1 --no-dashboard"
        procs.append(subprocess.Popen(["bash", "-c", f"exec {command}{extra}"], env=env,
                                      cwd=tmp_path, stdout=open(tmp_path / log, "w"),
                                      stderr=subprocess.STDOUT, text=True))
        return procs[-1]

    try:
        for i, (scheduler, worker) in enumerate([(CLUSTER[0], CLUSTER[2]),
                                                  (CLUSTER[1], CLUSTER[3])]):
            _, port = scheduler_on_a_free_port(
                lambda port: start(scheduler, port, f"scheduler-{i}.log"),  # noqa: B023
                tmp_path / f"scheduler-{i}.log")
            start(worker, port, f"worker-{i}.log")
            with Client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
                client.wait_for_workers(os.cpu_count() or 1, timeout=120)
                assert wait_until(lambda: len(client.nthreads()) == (os.cpu_count() or 1), 60)
            if i == 0:  # the first cluster (hyphenated spellings) also takes the builds
                build_port = port
        for command in (CLUSTER[4], CLUSTER[8]):
            err = ok(run(command, tmp_path, tmp_path, PROJECT=str(project),
                         **{"HEAD:8786": f"127.0.0.1:{build_port}"}))
            assert f"(tcp://127.0.0.1:{build_port})" in err
            assert "dashboard" not in err  # started with --no-dashboard: no link to nowhere
            assert SUMMARY.search(err)
        assert subprocess.run([project / "app"], capture_output=True,  # -o is PROJECT-relative
                              text=True).stdout == "hello, FGO\n"
        # DAS-5's lines: what prun starts on each node is the dask-worker command above,
        # and `module load prun` belongs to DAS-5's shell; the rest was run here.
        assert CLUSTER[7].split("dask-worker", 1)[1].strip() in CLUSTER[2]
        assert CLUSTER[6].rstrip(" &") == CLUSTER[0]
    finally:
        stop_processes(procs, timeout=15)


def test_shared_cache_section(project: Path, tmp_path: Path) -> None:
    """Plain go through the helper on a real cluster: go test works, and a second run in
    another GOCACHE reports the test result cached (from the cluster tier)."""
    (project / "greet" / "greet_test.go").write_text(
        'package greet\n\nimport "testing"\n\nfunc TestHello(t *testing.T) {\n'
        '\tif Hello("x") != "hello, X" { t.Fatal(Hello("x")) }\n}\n')
    with RealCluster(tmp_path / "c", workers=2) as cluster:
        first, second = (run(f"GOCACHE={tmp_path / name} {SHARED_CACHE}", project, tmp_path,
                             **{"HEAD:8786": cluster.address.removeprefix("tcp://")})
                         for name in ("gocache-1", "gocache-2"))
        ok(first)
        ok(second)
    assert "ok  \texample.com/hello/greet" in first.stdout and "(cached)" not in first.stdout
    assert "ok  \texample.com/hello/greet\t(cached)" in second.stdout, second.stdout


def test_walkthrough(tmp_path: Path) -> None:
    shown = dict(readme_commands(README.read_text()))
    plan, cold, noop = WALKTHROUGH
    proc = run(plan, ROOT, tmp_path)
    ok(proc)
    assert_shows(proc.stdout, shown[plan])

    err = ok(run(cold, tmp_path, tmp_path, **{"tests/data/hello": str(ROOT / "tests/data/hello")}))
    assert_shows(err, shown[cold])
    report = json.loads((tmp_path / "report.json").read_text())
    # One machine, defaults, nothing to distribute: go build compiles alone (no shim).
    assert report["cluster"]["go_alone"] and report["totals"]["by_go"] == report["totals"]["local"] > 0
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["traceEvents"]

    err = ok(run(noop, ROOT, tmp_path))
    assert_shows(err, shown[noop])
    assert re.search(r"fgo: 0 remote, 0 local, [1-9]\d* cached", err), err
    assert subprocess.run([tmp_path / "hello"], capture_output=True,
                          text=True).stdout == "hello, FGO\n"
