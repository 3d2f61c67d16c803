"""Cluster operation: worker setup, and a TLS-secured cluster on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import VENV_BIN, dask_command, free_port, oracle_build, run_fgo, sha, stop_processes


def test_worker_setup_prepares_every_worker(real_cluster) -> None:
    proc = run_fgo("worker-setup", "--scheduler", real_cluster.address, "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == 2
    for r in results.values():
        assert r["go"] == "go1.27.3" and Path(r["patched_compiler"]).is_file()


def _certs(root: Path) -> dict[str, Path]:
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


def test_tls_cluster_refuses_a_client_without_the_certificate(hello: Path, tmp_path: Path) -> None:
    c = _certs(tmp_path / "certs")
    tls = ["--tls-ca-file", str(c["ca"]), "--tls-cert", str(c["cert"]), "--tls-key", str(c["key"])]
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    base = dask_command() or [str(VENV_BIN / "dask-scheduler")]
    env = {**os.environ, "FGO_STORE": str(tmp_path / "store")}
    log = open(tmp_path / "tls.log", "wb")
    procs = [subprocess.Popen([*base, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--protocol", "tls", "--dashboard-address", ":0", *tls],
                              stdout=log, stderr=subprocess.STDOUT, env=env)]
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
