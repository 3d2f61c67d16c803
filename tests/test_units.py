"""The pure parts: argument parsing, sandbox rewriting, placement, blobs, executor refusals."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from fgo import toolchain

from fgo.worker import compileargs

from fgo.worker import executor
from fgo.worker.blobs import BlobIndex, CorruptBlob, Store, export_data, read_export_data, sha256
from fgo.build.placement import Placement

ARGS = ["-o", "/w/b001/_pkg_.a", "-trimpath", "/w/b001=>", "-p", "main", "-lang=go1.22",
        "-complete", "-buildid", "x/x", "-goversion", "go1.27.3", "-c=2", "-nolocalimports",
        "-importcfg", "/w/b001/importcfg", "-embedcfg", "/w/b001/embedcfg", "-pack",
        "/src/app/main.go", "/src/app/util.go"]
IMPORTCFG = b"# import config\npackagefile fmt=/cache/ab/fmt-d\npackagefile os=/cache/cd/os-d\n"
EMBEDCFG = json.dumps({"Patterns": {"hi.txt": ["hi.txt"]},
                       "Files": {"hi.txt": "/src/app/hi.txt"}}).encode()


def read(path: str) -> bytes:
    return {"/w/b001/importcfg": IMPORTCFG, "/w/b001/embedcfg": EMBEDCFG}[path]


def test_parse_finds_every_input_and_output() -> None:
    call = compileargs.parse(ARGS, "/src/app", read)
    assert call.outputs == ["/w/b001/_pkg_.a"]
    assert call.package == "main"
    assert set(call.inputs) == {"/w/b001/importcfg", "/w/b001/embedcfg", "/src/app/main.go",
                                "/src/app/util.go", "/src/app/hi.txt"}
    assert call.archives == ["/cache/ab/fmt-d", "/cache/cd/os-d"]


@pytest.mark.parametrize("flag", ["-I", "-cpuprofile", "-json", "-coveragecfg", "-frobnicate"])
def test_unknown_or_unshippable_flags_run_locally(flag: str) -> None:
    with pytest.raises(compileargs.NotRemoteSafe):
        compileargs.parse([flag, "x", *ARGS], "/src/app", read)


def test_sandbox_args_prefix_paths_and_extend_trimpath() -> None:
    call = compileargs.parse(ARGS, "/src/app", read)
    args = compileargs.sandbox_args(call, "/S", "/goroot")
    assert args[args.index("-o") + 1] == "/S/w/b001/_pkg_.a"
    assert args[args.index("-importcfg") + 1] == "/S/w/b001/importcfg"
    assert args[-2:] == ["/S/src/app/main.go", "/S/src/app/util.go"]
    trim = args[args.index("-trimpath") + 1].split(";")
    # go build's own rule first (first match wins), then GOROOT, then the sandbox itself
    assert trim == ["/S/w/b001=>", "/S/goroot=>$GOROOT", "/S/src=>/src", "/S/w=>/w"]
    assert "-lang=go1.22" in args and "-c=2" in args


def test_inline_flag_values_are_rewritten() -> None:
    call = compileargs.parse(["-o=/w/x.a", "-p=main", "/src/a.go"], "/src", read)
    args = compileargs.sandbox_args(call, "/S", "/goroot")
    assert "-o=/S/w/x.a" in args and args[0].startswith("-trimpath=")


def test_config_files_point_into_the_sandbox() -> None:
    text = compileargs.sandbox_importcfg(IMPORTCFG.decode(), "/S")
    assert "packagefile fmt=/S/cache/ab/fmt-d" in text and text.startswith("# import config")
    assert json.loads(compileargs.sandbox_embedcfg(EMBEDCFG, "/S"))["Files"] == {
        "hi.txt": "/S/src/app/hi.txt"}


def test_placement_sends_each_blob_once_per_store() -> None:
    p = Placement()
    p.add_worker("w1", 1, "hostA:/store", set())
    p.add_worker("w2", 1, "hostA:/store", set())   # same host, same store
    p.add_worker("w3", 1, "hostB:/store", {"big"})
    needs = {"big": 1000, "small": 10}
    assert p.choose(needs) == "w3"                   # already holds most bytes
    send, wait = p.transfer("w3", needs)
    assert send == ["small"] and wait == []
    a = p.choose(needs)
    assert a in ("w1", "w2")
    send_a, _ = p.transfer(a, needs)
    assert send_a == ["big", "small"]
    b = p.choose(needs)                              # the other free worker of host A
    send_b, wait_b = p.transfer(b, needs)
    assert send_b == [] and wait_b == ["big", "small"]  # already on its way to that store
    p.finished(a, send_a, list(needs))
    assert p.stored["hostA:/store"] == {"big", "small"} and not p.inflight["hostA:/store"]
    p.lacks(a, ["big"])                              # a store wiped under us
    assert p.transfer(a, needs)[0] == ["big"]


def test_placement_prefers_free_threads() -> None:
    p = Placement()
    p.add_worker("w1", 1, "s1", {"x"})
    p.add_worker("w2", 1, "s2", set())
    assert p.choose({"x": 5}) == "w1"
    assert p.choose({"x": 5}) == "w2"                # w1 is busy now


def test_export_data_of_a_real_archive(tmp_path: Path) -> None:
    src = tmp_path / "p.go"
    src.write_text("package p\n\nfunc F() int { return 42 }\n")
    out = tmp_path / "p.a"
    proc = toolchain.run_go(["tool", "compile", "-p", "p", "-pack", "-o", str(out), str(src)],
                            cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    whole = out.read_bytes()
    cut = read_export_data(str(out))
    assert cut == export_data(whole) and whole.startswith(cut) and len(cut) < len(whole)
    assert b"__.PKGDEF" in cut and b"_go_.o" not in cut
    blob = BlobIndex().blob(str(out), export_only=True)
    assert blob.sha == sha256(cut) and blob.read() == cut


def test_store_rejects_corrupt_blobs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.put(sha256(b"ok"), b"ok")
    assert store.has(sha256(b"ok")) and store.inventory() == [sha256(b"ok")]
    with pytest.raises(CorruptBlob):
        store.put(sha256(b"ok2"), b"tampered")


def _task(call: compileargs.CompileCall, inputs: dict[str, str], blobs: dict[str, bytes]) -> dict:
    return {"identity": asdict(toolchain.identity()), "call": asdict(call), "inputs": inputs,
            "blobs": blobs, "wait_for": [], "env": {}, "head_goroot": str(toolchain.goroot())}


def test_executor_refuses_another_toolchain() -> None:
    call = compileargs.CompileCall(args=[], cwd="/", outputs=[], inputs=[])
    task = _task(call, {}, {})
    task["identity"] = {"go_version": "go1.26.0", "compiler_sha256": "0" * 64}
    result = executor.execute(task)
    assert result["status"] == "refused"
    assert "go1.26.0" in result["reason"] and toolchain.go_version() in result["reason"]


def test_executor_reports_missing_and_corrupt_blobs() -> None:
    call = compileargs.CompileCall(args=["/a.go"], cwd="/", outputs=["/o.a"], inputs=["/a.go"])
    missing = executor.execute(_task(call, {"/a.go": sha256(b"never sent")}, {}))
    assert missing["status"] == "missing" and missing["missing"] == [sha256(b"never sent")]
    corrupt = executor.execute(_task(call, {"/a.go": "f" * 64}, {"f" * 64: b"junk"}))
    assert corrupt["status"] == "corrupt"


@pytest.mark.parametrize("path", ["/../etc/passwd", "relative/x.go", "/a/../../b"])
def test_executor_never_writes_outside_its_sandbox(path: str) -> None:
    data = b"package p\n"
    call = compileargs.CompileCall(args=[path], cwd="/", outputs=["/o.a"], inputs=[path])
    with pytest.raises(executor.BadTask):
        executor.execute(_task(call, {path: sha256(data)}, {sha256(data): data}))


def test_settings_precedence(tmp_path: Path) -> None:
    from fgo import config
    from fgo.errors import FgoError
    (tmp_path / "pyproject.toml").write_text(
        '[tool.fgo]\nscheduler = "tcp://from-file:8786"\nthreads = 3\ntimeout = 30\n')
    project = tmp_path / "sub"
    project.mkdir()
    s = config.resolve(project, {}, environ={})
    assert (s["scheduler"], s["threads"], s["timeout"]) == ("tcp://from-file:8786", 3, 30.0)
    s = config.resolve(project, {}, environ={"FGO_SCHEDULER": "tcp://from-env:1", "FGO_THREADS": "2"})
    assert (s["scheduler"], s["threads"]) == ("tcp://from-env:1", 2)
    s = config.resolve(project, {"scheduler": "tcp://from-flag:2", "threads": None},
                       environ={"FGO_SCHEDULER": "tcp://from-env:1"})
    assert (s["scheduler"], s["threads"]) == ("tcp://from-flag:2", 3)
    with pytest.raises(FgoError, match="FGO_THREADS"):
        config.resolve(project, {}, environ={"FGO_THREADS": "many"})
    (tmp_path / "pyproject.toml").write_text('[tool.fgo]\nsheduler = "typo"\n')
    with pytest.raises(FgoError, match="sheduler"):
        config.resolve(project, {}, environ={})


def test_check_build_retargets_outputs(tmp_path: Path) -> None:
    from fgo.verify.check import _retarget_output
    (tmp_path / "bin").mkdir()
    assert _retarget_output(["-o", "app", "."], "/T", tmp_path) == ["-o", "/T/app", "."]
    assert _retarget_output(["-o=x/app"], "/T", tmp_path) == ["-o=/T/app"]
    assert _retarget_output(["-o", "bin", "./..."], "/T", tmp_path) == ["-o", "/T/", "./..."]
    assert _retarget_output(["-o", "out/", "./..."], "/T", tmp_path) == ["-o", "/T/", "./..."]
    assert _retarget_output(["-a", "."], "/T", tmp_path) == ["-o", "/T/", "-a", "."]


def test_the_runner_echoes_and_dry_runs(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv(toolchain.ECHO_ENV, raising=False)
    marker = tmp_path / "ran"
    proc = toolchain.run(["sh", "-c", f"echo out; touch {marker}"], cwd=tmp_path, echo=True)
    assert proc.returncode == 0 and proc.stdout == "out\n" and marker.exists()
    assert capsys.readouterr().err == f"cd {tmp_path}\nsh -c 'echo out; touch {marker}'\n"
    marker.unlink()
    proc = toolchain.run(["sh", "-c", f"touch {marker}"], dry_run=True)
    assert proc.returncode == 0 and not marker.exists()
    assert capsys.readouterr().err == f"sh -c 'touch {marker}'\n"
    monkeypatch.setenv(toolchain.ECHO_ENV, "1")
    toolchain.run(["true"])
    assert capsys.readouterr().err == "true\n"
    monkeypatch.setenv(toolchain.ECHO_ENV, "0")
    toolchain.run(["true"])
    assert capsys.readouterr().err == ""


def test_run_build_retries_a_library_without_o(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/lib\n\ngo 1.27\n")
    (tmp_path / "lib.go").write_text("package lib\n\nfunc F() int { return 1 }\n")
    out = tmp_path / "out"
    out.mkdir()
    proc = toolchain.run_build([str(toolchain.go_binary()), "build"], ["-o", f"{out}/", "."],
                               cwd=tmp_path, env=toolchain.go_env(GOCACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr
    assert list(out.iterdir()) == [] and proc.args[-1] == "." and "-o" not in proc.args
