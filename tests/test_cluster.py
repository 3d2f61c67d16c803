"""Cluster operation: worker setup, a TLS-secured cluster on loopback, the test cluster itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

import conftest
from conftest import (VENV_BIN, RealCluster, dask_command, free_port, make_certs as _certs,
                      scheduler_on_a_free_port,
                      oracle_build, run_fgo, sha, stop_processes)


def test_a_test_cluster_starts_when_its_first_port_is_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The port free_port found free can be taken before the scheduler binds it (a CI run
    lost a fault test so): the test cluster starts its scheduler again on another."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(conftest, "free_port", lambda: next(ports, None) or free_port())
        with RealCluster(tmp_path, workers=1) as cluster:
            assert cluster.port != taken.getsockname()[1]
            assert cluster.scheduler.poll() is None


def test_worker_setup_prepares_every_worker(real_cluster) -> None:
    proc = run_fgo("worker-setup", "--scheduler", real_cluster.address, "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == 2
    for r in results.values():
        assert r["go"] == "go1.27.3" and Path(r["patched_compiler"]).is_file()


def test_workers_preloaded_with_the_service_take_a_build(hello: Path, tmp_path: Path) -> None:
    """`dask worker --preload fgo.worker.service` (the README's command): each worker has
    fgo's handlers from its start, before any head connects; a head installs its plugin
    over them, and the build's compiles run there, its binary identical to go's."""
    with RealCluster(tmp_path / "cluster", workers=2, preload=True) as cluster:
        logs = sorted((tmp_path / "cluster").glob("worker-*.log"))
        assert len(logs) == 2
        for log in logs:   # installed at the start, by the preload, before any head
            text = log.read_text()
            assert "Run preload setup: fgo.worker.service" in text, text
            assert "Starting Worker plugin fgo-compile-service" in text, text
        # before any head: the preload's quieting outlived the worker's start (it starts
        # its callbacks after its preloads): no profiler, the tick slowed
        client = cluster.client()
        try:
            callbacks = client.run(lambda dask_worker: {
                n: pc.callback_time for n, pc in dask_worker.periodic_callbacks.items()
                if pc.is_running()})
        finally:
            client.close()
        for running in callbacks.values():
            assert "profile" not in running and running["tick"] == 1000, running
        report = tmp_path / "r.json"
        proc = run_fgo("build", "-q", "--report", str(report), "--scheduler", cluster.address,
                       "--local-slots", "0", str(hello), "--", "-a", "-o",
                       str(hello / "fgo.bin"), timeout=600)
        assert proc.returncode == 0, proc.stderr
    assert oracle_build(hello, "-a", "-o", str(hello / "go.bin")).returncode == 0
    assert sha(hello / "fgo.bin") == sha(hello / "go.bin")
    t = json.loads(report.read_text())["totals"]
    assert t["remote"] > 20 and t["fallbacks"] == 0, t["fallback_reasons"]


def test_tls_cluster_refuses_a_client_without_the_certificate(hello: Path, tmp_path: Path) -> None:
    c = _certs(tmp_path / "certs")
    tls = ["--tls-ca-file", str(c["ca"]), "--tls-cert", str(c["cert"]), "--tls-key", str(c["key"])]
    base = dask_command() or [str(VENV_BIN / "dask-scheduler")]
    env = {**os.environ, "FGO_STORE": str(tmp_path / "store")}
    log = open(tmp_path / "tls.log", "wb")

    def scheduler(port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*base, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                 "--protocol", "tls", "--dashboard-address", ":0", *tls],
                                stdout=open(tmp_path / "tls-scheduler.log", "wb"),
                                stderr=subprocess.STDOUT, env=env)
    first, port = scheduler_on_a_free_port(scheduler, tmp_path / "tls-scheduler.log")
    address = f"tls://127.0.0.1:{port}"
    procs = [first]
    try:
        procs.append(subprocess.Popen([*base, "worker", address, "--nthreads", "1", "--no-nanny",
                                       "--host", "127.0.0.1", "--dashboard-address", ":0", *tls],
                                      stdout=log, stderr=subprocess.STDOUT, env=env))
        plain = run_fgo("build", "--scheduler", address, str(hello), "--", "-o",
                        str(hello / "x.bin"), timeout=60)
        assert plain.returncode != 0 and "speaks TLS" in plain.stderr
        # a certificate from another CA: the scheduler refuses the handshake
        other = _certs(tmp_path / "other")
        refused = run_fgo("build", "--scheduler", address, "--tls-ca-file", str(other["ca"]),
                          "--tls-cert", str(other["cert"]), "--tls-key", str(other["key"]),
                          str(hello), "--", "-o", str(hello / "x.bin"), timeout=60)
        assert refused.returncode != 0
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "cannot reach" in refused.stderr
        ok = run_fgo("build", "--report", str(tmp_path / "r.json"), "--scheduler", address,
                     *tls, str(hello), "--", "-a", "-o", str(hello / "tls.bin"), timeout=600)
        assert ok.returncode == 0, ok.stderr
        assert oracle_build(hello, "-a", "-o", str(hello / "go.bin")).returncode == 0
        assert sha(hello / "tls.bin") == sha(hello / "go.bin")
        assert json.loads((tmp_path / "r.json").read_text())["totals"]["remote"] > 20
    finally:
        stop_processes(procs)
