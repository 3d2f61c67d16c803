"""The pure parts: argument parsing, sandbox rewriting, placement, blobs, executor refusals."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from fgo import compilecall as compileargs
from fgo import toolchain, wire
from fgo.blobs import BlobIndex, CorruptBlob, Store
from fgo.fileio import LineTail, sha256
from fgo.goarchive import export_data, read_export_data
from fgo.head.placement import Placement
from fgo.wire import CompileResult, CompileTask, Status
from fgo.worker import executor, sandbox, service

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
    # go build's own rule first (first match wins), then GOROOT, then the sandbox itself,
    # then the head's GOROOT where no sandbox prefix is (cgo's //line directives)
    assert trim == ["/S/w/b001=>", "/S/goroot=>$GOROOT", "/S/src=>/src", "/S/w=>/w",
                    "/goroot=>$GOROOT"]
    assert "-lang=go1.22" in args and "-c=2" in args


def test_inline_flag_values_are_rewritten() -> None:
    call = compileargs.parse(["-o=/w/x.a", "-p=main", "/src/a.go"], "/src", read)
    args = compileargs.sandbox_args(call, "/S", "/goroot")
    assert "-o=/S/w/x.a" in args and args[0].startswith("-trimpath=")


def test_a_compile_in_place_is_go_builds_own_with_only_its_outputs_moved() -> None:
    call = compileargs.parse([*ARGS[:2], "-asmhdr=go_asm.h", *ARGS[2:]], "/src/app", read)
    staged = sandbox.staged_names(call.outputs)
    assert set(staged) == {"/w/b001/_pkg_.a", "/src/app/go_asm.h"}
    assert all(staged[out].startswith(out + ".fgo-") for out in staged)  # as `deliver` stages
    # a relative output by its path; the rest as go gave it
    assert compileargs.with_outputs(call.args, call.cwd, staged) == [
        "-o", staged["/w/b001/_pkg_.a"], "-asmhdr=" + staged["/src/app/go_asm.h"], *ARGS[2:]]


def test_a_compile_in_place_answers_with_its_staged_outputs_and_removes_a_failed_ones(
        tmp_path: Path) -> None:
    out = str(tmp_path / "_pkg_.a")
    call = compileargs.parse(["-o", out, "-p", "main", "/src/a.go"], "/src", read)
    staged = sandbox.staged_names(call.outputs)
    Path(staged[out]).write_bytes(b"archive")
    assert sandbox.staged_outputs(call, staged, ok=True) == (
        {out: (staged[out], 7)}, sha256(b"archive"))
    assert sandbox.staged_outputs(call, staged, ok=False) == ({}, None)
    assert not Path(staged[out]).exists()
    assert sandbox.staged_outputs(call, staged, ok=True) == ({}, None)  # it wrote none


def test_config_files_point_into_the_sandbox() -> None:
    text = compileargs.sandbox_importcfg(IMPORTCFG.decode(), "/S")
    assert "packagefile fmt=/S/cache/ab/fmt-d" in text and text.startswith("# import config")
    assert json.loads(compileargs.sandbox_embedcfg(EMBEDCFG, "/S"))["Files"] == {
        "hi.txt": "/S/src/app/hi.txt"}


def test_a_sandbox_writes_its_configs_over_the_last_compiles_and_never_into_the_store(
        tmp_path: Path) -> None:
    """A compile's importcfg is written over the one of the compile before, in the
    sandbox's own config file (no file created, none deleted), never placed as a link to
    its blob; its outputs go to the sandbox's outputs directory, and nothing of go build's
    $WORK (a new directory for every compile) is left when it ends, but for the source
    directories it laid out; a task naming the sandbox's own files is refused."""
    store = Store(tmp_path / "store")
    cfgs = [b"# import config\npackagefile fmt=/w/b%03d/fmt.a\n" % i for i in range(3)]
    source, symabis = b"package p\n", b"def p.f\n"
    for data in (*cfgs, source, symabis):
        store.put(sha256(data), data)
    inodes = []
    for i, cfg in enumerate(cfgs):
        importcfg, out, abis = f"/w/b{i:03d}/importcfg", f"/w/b{i:03d}/_pkg_.a", f"/w/b{i:03d}/symabis"
        call = compileargs.CompileCall(
            args=["-o", out, "-importcfg", importcfg, "-symabis", abis, "/src/p.go"],
            cwd="/src", outputs=[out], inputs=[importcfg, abis, "/src/p.go"],
            importcfg=importcfg)
        inputs = {importcfg: sha256(cfg), abis: sha256(symabis), "/src/p.go": sha256(source)}
        with sandbox.lease(call) as box:
            args = sandbox.materialize(store, inputs, call, box, "/goroot")
            written = args[args.index("-importcfg") + 1]
            assert written == box + sandbox.CONFIGS + "/importcfg"
            assert Path(written).read_text() == compileargs.sandbox_importcfg(cfg.decode(), box)
            assert os.stat(written).st_nlink == 1  # its own file, not the blob's
            assert args[args.index("-o") + 1] == sandbox.output_paths(box, call)[out]
            assert args[args.index("-symabis") + 1] == box + abis  # an input: at its path
            inodes.append(os.stat(written).st_ino)
            Path(args[args.index("-o") + 1]).write_bytes(b"archive")  # the compiler's
            assert sandbox.read_outputs(call, box) == {out: b"archive"}
        assert not os.path.exists(box + "/w")  # $WORK gone when the compile ended
        assert os.path.isdir(box + "/src") and not os.listdir(box + sandbox.OUTPUTS)
    assert inodes[0] == inodes[1] == inodes[2], "a later compile created its importcfg anew"
    for data in (*cfgs, source, symabis):  # no blob written through a link
        assert Path(store.path(sha256(data))).read_bytes() == data
    with pytest.raises(sandbox.BadTask):
        sandbox.check_paths(["/src/p.go", sandbox.CONFIGS + "/importcfg"])


def test_threads_asking_first_at_once_get_one_own_dir(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A process's own directory (the sandboxes', the held archives') is made (emptied)
    once, however many threads ask for it first at once: a second making deleted a
    sandbox in use."""
    import threading

    from fgo import fileio
    made: list[Path] = []

    def slow_process_dir(parent: Path, prefix: str = "") -> Path:
        made.append(parent)
        time.sleep(0.05)  # the window in which another thread asks too
        return tmp_path
    monkeypatch.setattr(fileio, "process_dir", slow_process_dir)
    own = fileio.OwnDir(lambda: tmp_path / "parent")
    roots: list[Path] = []
    threads = [threading.Thread(target=lambda: roots.append(own())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and roots == [tmp_path] * 4


def test_a_config_written_over_a_longer_one_holds_exactly_its_bytes(tmp_path: Path) -> None:
    """A spare file is written over, not truncated first: what is left of a longer old
    config past the new one's end is cut, in the same file."""
    path = str(tmp_path / "importcfg")
    sandbox.write_over(path, b"packagefile a=/x/a.a\n" * 50)
    inode = os.stat(path).st_ino
    sandbox.write_over(path, b"packagefile b=/y/b.a\n")
    assert Path(path).read_bytes() == b"packagefile b=/y/b.a\n"
    assert os.stat(path).st_ino == inode
    sandbox.write_over(path, b"")
    assert Path(path).read_bytes() == b""


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


def test_shards_go_only_to_free_workers_when_asked() -> None:
    """An automatic split's shards go only where a thread is free now: one queued behind a
    whole compile keeps its leader waiting for all of it. A forced split may queue."""
    p = Placement()
    p.add_worker("w1", 1, "s1", set())
    p.add_worker("w2", 1, "s2", set())
    assert p.choose({}) in ("w1", "w2")                  # a whole compile took one
    busy = next(w.address for w in p.workers.values() if w.running)
    free = p.choose_distinct({}, 2, free_only=True)
    assert free and busy not in free and len(free) == 1  # the free one only
    assert p.choose_distinct({}, 1, free_only=True) == []   # now none is free
    assert len(p.choose_distinct({}, 2)) == 2              # forced: queued behind them


def test_an_automatic_splits_shards_go_only_to_workers_holding_the_patched_compiler() -> None:
    p = Placement()
    for w in ("w1", "w2", "w3"):
        p.add_worker(w, 1, f"s-{w}", set())
    assert p.free_hosts(among={"w1", "w2"}) == 2 and p.free_hosts(among=set()) == 0
    assert p.choose_distinct({}, 2, free_only=True, among={"w2"}) == ["w2"]
    assert p.choose_distinct({}, 2, among={"w3"}) == ["w3"]   # none other, even queued
    assert p.choose_distinct({}, 1, free_only=True, among=set()) == []
    assert p.free_hosts(among={"w1", "w2"}) == 1              # w2 took a shard


def test_the_heads_host_counts_once_where_the_head_leads() -> None:
    """Free hosts for a split led by the head: workers on the head's own host (they read
    its files) add nothing beside the head's slot; another host's do."""
    p = Placement()
    p.add_worker("here", 1, "head:/store", set())
    p.add_worker("there", 1, "other:/store", set())
    assert p.free_hosts() == 2
    assert p.free_hosts(frozenset({"here"})) == 1


def test_a_paused_worker_gets_nothing_new_until_it_resumes() -> None:
    p = Placement()
    p.add_worker("w1", 1, "s1", {"x"})
    p.add_worker("w2", 1, "s2", set())
    assert p.pause("w1") and not p.pause("w1") and not p.pause("nobody")
    assert p.choose({"x": 5}) == "w2" and p.choose({"x": 5}) == "w2"   # queued, not w1
    assert p.choose_speculative({}) is None and p.free_threads() == 0
    assert p.choose_check({}, avoid="w2") is None and p.free_hosts() == 0
    p.pause("w2")
    assert p.choose({"x": 5}) is None                # nobody to place on
    p.resume("w1")
    assert p.choose({"x": 5}) == "w1"


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


def test_a_store_writes_each_blob_whole_and_read_only(tmp_path: Path) -> None:
    """A blob is written beside its name and renamed over it (nothing else left there),
    read-only; into a store wiped under a running worker too; a write that fails leaves
    nothing behind."""
    import shutil

    from fgo.fileio import write_atomically
    store = Store(tmp_path / "s")
    data = os.urandom(3 << 20)  # more than one write(2) may take
    store.put(sha256(data), data)
    path = Path(store.path(sha256(data)))
    assert path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o444
    assert os.listdir(path.parent) == [path.name]
    shutil.rmtree(tmp_path / "s")
    store.put(sha256(b"again"), b"again")
    assert store.has(sha256(b"again"))
    (tmp_path / "f").write_text("old")
    write_atomically(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"new" and (tmp_path / "f").stat().st_mode & 0o777 == 0o600
    with pytest.raises(IsADirectoryError):
        write_atomically(tmp_path / "s", b"x")  # a directory in the way
    assert sorted(os.listdir(tmp_path)) == ["f", "s"]


def _task(call: compileargs.CompileCall, inputs: dict[str, str], blobs: dict[str, bytes]
          ) -> CompileTask:
    return CompileTask(task_id="t", identity=toolchain.identity(), call=call, inputs=inputs,
                       blobs=blobs, wait_for=[], env={}, head_goroot=str(toolchain.goroot()))


def test_executor_refuses_another_toolchain() -> None:
    from dataclasses import replace
    call = compileargs.CompileCall(args=[], cwd="/", outputs=[], inputs=[])
    task = replace(_task(call, {}, {}),
                   identity=toolchain.Identity("go1.26.0", "0" * 64))
    result = executor.execute(task)
    assert result.status == "refused" and result.status is Status.REFUSED
    assert "go1.26.0" in result.reason and toolchain.go_version() in result.reason


def test_executor_reports_missing_and_corrupt_blobs() -> None:
    call = compileargs.CompileCall(args=["/a.go"], cwd="/", outputs=["/o.a"], inputs=["/a.go"])
    missing = executor.execute(_task(call, {"/a.go": sha256(b"never sent")}, {}))
    assert missing.status == "missing" and isinstance(missing, CompileResult)
    assert missing.missing == [sha256(b"never sent")]
    corrupt = executor.execute(_task(call, {"/a.go": "f" * 64}, {"f" * 64: b"junk"}))
    assert corrupt.status == "corrupt"


def test_a_worker_links_std_sources_from_its_own_goroot_only_as_the_head_hashed_them(
        tmp_path: Path) -> None:
    """Sources under the head's GOROOT that the task leaves out (from_goroot) are linked
    from this worker's GOROOT, wherever the head's is, when they hash as the head's did;
    one that does not (another release, an edited file) is reported missing, as a blob the
    store lacks is, and nothing of it is stored; a path outside src/ is never mapped."""
    from dataclasses import replace

    from fgo.worker import goroot
    own = toolchain.goroot() / "src" / "errors" / "errors.go"
    data = own.read_bytes()
    head_root = "/elsewhere/go"  # the head's GOROOT: another path than this worker's
    path = head_root + "/src/errors/errors.go"
    twin = "/w/b001/empty-twin.go"  # another input of the same bytes (not under GOROOT)
    call = compileargs.CompileCall(args=["-o", "/w/b001/_pkg_.a", path, twin], cwd="/w",
                                   outputs=["/w/b001/_pkg_.a"], inputs=[path, twin])
    task = replace(_task(call, {path: sha256(data), twin: sha256(data)}, {}),
                   head_goroot=head_root, from_goroot=[sha256(data)])
    problem, links = executor._admit(task)
    assert problem is None and links == {path: str(own), twin: str(own)}
    with sandbox.lease(call) as box:
        sandbox.materialize(executor.worker_store(), task.inputs, call, box, head_root, links)
        assert os.stat(box + path).st_ino == own.stat().st_ino  # linked, no file made
        assert os.stat(box + twin).st_ino == own.stat().st_ino
    assert own.read_bytes() == data  # the sandbox's end unlinked it, nothing more
    edited = sha256(data + b"// edited on the head\n")
    wrong = replace(task, inputs={path: edited}, from_goroot=[edited])
    problem, links = executor._admit(wrong)
    assert problem == (Status.MISSING, "", [edited]) and links == {}
    assert goroot.own_path(head_root, head_root + "/pkg/include/funcdata.h", "/mine/src/") is None
    assert goroot.own_path(head_root, head_root + "/src/../x.go", "/mine/src/") is None
    assert goroot.own_path(head_root + "/", path, "/mine/src/") == "/mine/src/errors/errors.go"
    scratch = tmp_path / "f"
    scratch.write_bytes(b"one")
    assert goroot.holds(str(scratch), sha256(b"one"))
    scratch.write_bytes(b"two!")  # another version: hashed again
    assert goroot.holds(str(scratch), sha256(b"two!")) and not goroot.holds(str(scratch), sha256(b"one"))
    assert not goroot.holds(str(tmp_path / "gone"), sha256(b""))
    assert goroot.linkable(str(tmp_path)) is (os.stat(tmp_path).st_dev == own.stat().st_dev)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".goroot-link")]


def test_a_goroot_a_worker_cannot_link_from_is_stored_once_instead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where this worker's GOROOT cannot be linked into its sandboxes (another filesystem,
    another user's files), a source it holds as the head hashed it is stored from its own
    disk, once, and found in the store like any blob: nothing is linked from GOROOT."""
    from fgo.blobs import Store
    from fgo.worker import goroot
    own = toolchain.goroot() / "src" / "errors" / "wrap.go"
    sha = sha256(own.read_bytes())
    monkeypatch.setattr(goroot, "linkable", lambda into: False)
    store = Store(tmp_path / "store")
    head_root = "/elsewhere/go"
    path = head_root + "/src/errors/wrap.go"
    assert goroot.sources({path: sha}, [sha], head_root, store, str(tmp_path)) == {}
    assert store.has(sha) and Path(store.path(sha)).read_bytes() == own.read_bytes()
    assert os.stat(store.path(sha)).st_ino != own.stat().st_ino  # a copy, not a link


def test_blobs_riding_with_a_task_are_stored_on_arrival_not_when_it_runs() -> None:
    """B waits for a blob riding with A (`wait_for`); A is still queued behind B (one thread).
    A's arrival stored it (executor.receive, called by the service before a task queues),
    so B goes ahead at once instead of waiting out WAIT_FOR_INFLIGHT_S."""
    import time
    from dataclasses import replace
    data = os.urandom(64)
    call = compileargs.CompileCall(args=["/b.go"], cwd="/", outputs=["/o.a"], inputs=["/b.go"])
    a = _task(call, {}, {sha256(data): data})
    b = replace(_task(call, {"/b.go": sha256(data)}, {}), wait_for=[sha256(data)])
    assert executor.receive(a) is None and executor.receive(a) is None  # once, then a no-op
    t = time.monotonic()
    assert executor._admit(b) == (None, {})
    assert time.monotonic() - t < 1.0
    bad = _task(call, {}, {"f" * 64: b"junk"})
    assert executor.receive(bad)[0] is Status.CORRUPT


def test_a_tail_gives_each_complete_line_once(tmp_path: Path) -> None:
    """Another process appends lines as it goes: a reader sees each whole line once, and a
    line still being written only once it ends."""
    log = tmp_path / "log"
    tail = LineTail(log)
    assert tail.new_lines() == []                       # nothing written yet
    log.write_bytes(b"a 1\nb 2\nc")
    assert tail.new_lines() == [b"a 1", b"b 2"]
    assert tail.new_lines() == []
    with open(log, "ab") as f:
        f.write(b" 3\n\xffd 4\n")
    assert tail.new_lines() == [b"c 3", b"\xffd 4"]


def test_every_message_travels_as_plain_data() -> None:
    """Encoded, a task is dicts, lists, str, numbers and bytes only: msgpack carries it and
    nothing is unpickled on the other side."""
    import msgpack
    call = compileargs.CompileCall(args=["-o", "/o.a"], cwd="/", outputs=["/o.a"], inputs=[])
    task = _task(call, {"/a.go": "0" * 64}, {"0" * 64: b"x"})
    task = wire.CompileTask(**{**task.__dict__, "split": wire.SplitRole(
        k=0, n=2, series="s", plan="p", timeout=1.0, split_id="id",
        peers=[wire.ShardPeer(1, "tcp://w:1")])})
    data = msgpack.unpackb(msgpack.packb(wire.encode(task)), raw=False)
    back = wire.decode(data, CompileTask)
    assert back == task and back.split is not None and back.split.leader
    result = CompileResult(Status.OK, "w", delivered={"/o.a": ("/o.a.fgo-1", 3)},
                           stats=wire.CompilerStats.from_json({"backend_s": 2, "funcs": 3}))
    assert wire.decode(msgpack.unpackb(msgpack.packb(wire.encode(result))), CompileResult) \
        == result


def test_a_message_of_another_version_or_type_is_refused_naming_both() -> None:
    call = compileargs.CompileCall(args=[], cwd="/", outputs=[], inputs=[])
    data = wire.encode(_task(call, {}, {}))
    newer = {**data, "version": wire.PROTOCOL_VERSION + 1}
    with pytest.raises(wire.ProtocolMismatch) as exc:
        wire.decode(newer, CompileTask)
    assert str(exc.value) == (f"got a CompileTask of protocol version {wire.PROTOCOL_VERSION + 1}"
                              f", this side speaks protocol version {wire.PROTOCOL_VERSION}")
    with pytest.raises(wire.ProtocolMismatch, match="expected a CompileResult .* got a "
                                                    "CompileTask"):
        wire.decode(data, CompileResult)
    old = {k: v for k, v in data.items() if k not in ("type", "version")}  # a pickle-era dict
    with pytest.raises(wire.ProtocolMismatch, match="got a dict of protocol version none"):
        wire.decode(old, CompileTask)


def test_a_worker_of_another_protocol_is_refused_by_the_head() -> None:
    """The head's remote executor judges a PROTOCOL answer (what decoding another
    version's reply gives) as: never use that worker again, run the compile elsewhere."""
    from fgo.head.policy import RemoteFailure
    from fgo.head.remote import RemoteExecutor, _decode
    from fgo.report.record import Recorder

    class Pool:
        excluded: list[str] = []

        def exclude(self, address: str) -> None:
            self.excluded.append(address)

    pool = Pool()
    remote = RemoteExecutor(pool, None, Recorder(), 60)  # type: ignore[arg-type]
    for answer in ({"status": "ok", "worker": "w1"},
                   {**wire.encode(CompileResult(Status.OK, "w1")),
                    "version": wire.PROTOCOL_VERSION - 1}):
        with pytest.raises(RemoteFailure, match="protocol-mismatch: .*protocol version"):
            remote.judge("w1", _decode(answer))
    assert pool.excluded == ["w1", "w1"]


def test_faults_are_off_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from fgo.worker import faults
    monkeypatch.delenv(faults.FAULT_ENV, raising=False)
    assert faults.damage("transfer", b"abc") == b"abc" and faults.damage("shard", b"abc") == b"abc"
    monkeypatch.setenv(faults.FAULT_ENV, "corrupt-transfer")
    assert faults.damage("transfer", b"abc") == b"\x9ebc" and faults.damage("shard", b"abc") == b"abc"
    monkeypatch.setenv(faults.FAULT_ENV, "corrupt-shard")
    assert faults.damage("shard", b"abc") == b"a\x9dc" and faults.damage("transfer", b"abc") == b"abc"
    monkeypatch.setenv(faults.FAULT_ENV, "truncate-shard")
    assert faults.damage("shard", b"abcd") == b"ab"


@pytest.mark.parametrize("path", ["/../etc/passwd", "relative/x.go", "/a/../../b"])
def test_executor_never_writes_outside_its_sandbox(path: str) -> None:
    data = b"package p\n"
    call = compileargs.CompileCall(args=[path], cwd="/", outputs=["/o.a"], inputs=[path])
    with pytest.raises(sandbox.BadTask):
        executor.execute(_task(call, {path: sha256(data)}, {sha256(data): data}))


def test_settings_precedence(tmp_path: Path) -> None:
    from fgo import settings as config
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


@pytest.mark.parametrize("flags,env,needle", [
    ({"split_large": "-1"}, {}, "--split-large: bad value '-1'"),
    ({"shards": "1"}, {}, "K must be at least 2"),
    ({}, {"FGO_SHARDS": "0"}, "FGO_SHARDS: bad value '0' for --shards"),
    ({"verify_rate": "1.5"}, {}, "not a share"),
    ({"local_slots": "-2"}, {}, "--local-slots"),
    ({"tls_ca_file": "/nope"}, {}, "no such file: /nope"),
    ({}, {"FGO_CACHE_SIZE": "lots"}, "FGO_CACHE_SIZE"),
    ({}, {"FGO_PIPELINE": "maybe"}, "not a boolean"),
])
def test_every_setting_is_validated_wherever_it_comes_from(tmp_path: Path, flags: dict,
                                                           env: dict, needle: str) -> None:
    from fgo import settings
    from fgo.errors import FgoError
    with pytest.raises(FgoError, match=needle.replace("(", r"\(")):
        settings.resolve(tmp_path, flags, environ=env)


def test_the_settings_table_is_the_one_source_of_defaults() -> None:
    """Each build option's default is its setting's (parsed) default."""
    from fgo import settings
    from fgo.head.options import BuildOptions
    resolved = settings.resolve(Path("/"), {}, environ={})
    opts = BuildOptions.of(".", [], resolved)
    for s in settings.for_verb(settings.BUILD):
        if hasattr(opts, s.name) and s.default is not None:
            assert getattr(opts, s.name) == s.parse(s.default), s.name


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


def test_run_unless_stops_the_command_when_aborted(tmp_path: Path) -> None:
    import threading
    never = threading.Event()
    assert toolchain.run_unless(["sh", "-c", "exit 3"], never) == 3
    abort = threading.Event()
    threading.Timer(0.2, abort.set).start()
    started = time.monotonic()
    assert toolchain.run_unless(["sleep", "30"], abort) is None
    assert time.monotonic() - started < 10


def test_a_started_command_is_killed_when_its_caller_fails() -> None:
    import threading
    started = toolchain.start_unless(["sleep", "30"], threading.Event())
    t = time.monotonic()
    started.kill()                      # what the head did beside it failed
    assert started.wait() is not None and time.monotonic() - t < 10
    started.kill()                      # once ended: nothing to kill


def test_the_shim_socket_holds_calls_made_before_the_head_serves_it(tmp_path: Path) -> None:
    """go build may start before the head has built what answers its shim: a call made then
    waits in the socket's backlog and is answered once the server starts."""
    import socket

    from fgo.head.front import ShimServer
    from fgo.head.shim import listen, socket_path
    from fgo.wire import ShimReply
    path = socket_path(str(tmp_path))
    listener = listen(path)
    early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    early.connect(path)                 # before anything accepts
    early.sendall(json.dumps({"argv": ["compile"], "cwd": "/", "env": {}}).encode() + b"\n")
    asked: list[list[str]] = []

    def handle(request):  # type: ignore[no-untyped-def]
        asked.append(request.argv)
        return ShimReply(local=False, exit=3, output=b"x"), None
    server = ShimServer(path, handle, listener)
    server.start()
    try:
        early.settimeout(10)
        reply = json.loads(early.makefile("rb").readline())
        assert asked == [["compile"]] and reply["exit"] == 3 and not reply["local"]
    finally:
        early.close()
        server.stop()
    unused = ShimServer(str(tmp_path / "other.sock"), handle, listen(str(tmp_path / "other.sock")))
    unused.stop()                       # never started: its listener closed all the same
    assert unused._listener is None


def test_a_held_shim_call_keeps_no_other_waiting_and_threads_are_kept(tmp_path: Path) -> None:
    """A call whose tool still runs (held) never delays another: the next call is answered
    meanwhile on a thread of its own; once both have ended, a third reuses a kept thread."""
    import base64
    import socket
    import threading

    from fgo.head.front import ShimServer
    from fgo.head.shim import socket_path
    from fgo.wire import ShimReply
    released = threading.Event()

    def call_threads() -> set[threading.Thread]:  # this server's: others' may linger in the
        # process (told apart as objects: a thread's ident is reused once it has ended)
        return {t for t in threading.enumerate() if t.name == "fgo-shim-call"} - older
    older = set(threading.enumerate())

    def handle(request):  # type: ignore[no-untyped-def]
        if request.argv == ["hold"]:
            return ShimReply(local=True, hold=True), released.set
        return ShimReply(local=False, exit=0, output=b"ok"), None
    path = socket_path(str(tmp_path))
    server = ShimServer(path, handle)
    server.start()

    def call(argv: list[str]) -> tuple[socket.socket, dict]:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(10)
        conn.connect(path)
        conn.sendall(json.dumps({"argv": argv, "cwd": "/", "env": {}}).encode() + b"\n")
        return conn, json.loads(conn.makefile("rb").readline())
    try:
        held, reply = call(["hold"])
        assert reply["local"] and reply["hold"]
        other, reply = call(["compile"])       # answered while the first is held
        assert reply["exit"] == 0 and base64.b64decode(reply["output"]) == b"ok"
        other.close()
        assert not released.is_set()
        held.close()                            # the held tool exits
        assert released.wait(10)
        deadline = time.monotonic() + 10        # both threads back to idle (a fixed 0.1 s
        while server._calls._idle < 2 and time.monotonic() < deadline:  # was short under load)
            time.sleep(0.01)
        before = call_threads()
        third, reply = call(["compile"])
        third.close()
        assert reply["exit"] == 0 and call_threads() == before and len(before) == 2
    finally:
        server.stop()


def test_a_head_imports_distributed_without_numpy() -> None:
    """fgo.cluster.connect.import_distributed: numpy, ~0.2 s of CPU in each head or cacheprog
    that connects, is not imported with distributed (which runs without it); it stays
    importable afterwards."""
    import subprocess
    import sys
    code = (
        "import importlib.util, sys\n"
        "from fgo.cluster.connect import import_distributed\n"
        "import_distributed()\n"
        "from distributed.protocol.utils import host_array\n"
        "assert 'distributed' in sys.modules and 'numpy' not in sys.modules\n"
        "assert len(host_array(8)) == 8\n"
        "if importlib.util.find_spec('numpy') is not None:\n"
        "    import numpy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_background_cluster_is_sized_as_remembered_until_connected() -> None:
    """fgo.cluster.connect.BackgroundCluster: connecting in a thread once asked for (its
    client); its error, once it has ended, is the ClusterError the build reports (any
    other exception named as one)."""
    import threading
    from fgo.cluster.connect import BackgroundCluster, Cluster, ClusterError
    go_on = threading.Event()
    made = Cluster(client="client", local=None, scheduler="tcp://h:1", dashboard=None)

    def connect() -> Cluster:
        go_on.wait(10)
        return made
    cluster = BackgroundCluster("tcp://h:1", connect, workers=3, threads=2)
    assert not cluster.started and (cluster.workers, cluster.threads) == (3, 2)
    assert not cluster.local and cluster.dashboard is None
    go_on.set()
    assert cluster.client == "client" and cluster.started and cluster.error is None

    def refused() -> Cluster:
        raise OSError("connection refused")
    failed = BackgroundCluster("tcp://h:2", refused, workers=1, threads=1)
    with pytest.raises(ClusterError, match="cannot reach scheduler tcp://h:2: OSError"):
        failed.wait()
    assert not failed.started and isinstance(failed.error, ClusterError)
    failed.close()  # nothing to close: no error either
    slow = BackgroundCluster("tcp://h:3", lambda: (time.sleep(5), made)[1], 1, 1)
    with pytest.raises(ClusterError, match="not connected within 0.1s"):
        slow.wait(timeout=0.1)


def test_a_cluster_connected_on_demand_begins_when_asked_and_can_be_abandoned() -> None:
    """BackgroundCluster: nothing is connected until something asks (`start`, or
    `wait` by whoever needs the client); abandoned before, `close` and `wait` return at
    once and the connect never runs; abandoned while it runs, the connect closes what it
    made; after it ended, abandon says False (the build then uses it as usual)."""
    import threading
    from fgo.cluster.connect import BackgroundCluster, ClusterError
    calls: list[str] = []
    closed = threading.Event()

    class Made:
        client = "client"

        def close(self) -> None:
            closed.set()
    go_on = threading.Event()

    def connect() -> Made:
        calls.append("connect")
        go_on.wait(10)
        return Made()
    never = BackgroundCluster("tcp://h:1", connect, 2, 1)
    time.sleep(0.1)
    assert not never.begun and never.connecting and calls == []
    assert never.abandon()
    assert never.wait_begun() is False
    never.start()
    never.close()
    with pytest.raises(ClusterError, match="not needed"):
        never.wait(timeout=0.1)
    assert calls == []
    running = BackgroundCluster("tcp://h:2", connect, 2, 1)
    running.start()
    assert running.wait_begun()
    deadline = time.monotonic() + 5
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert running.abandon()
    running.close()  # at once: not waiting for the connect
    go_on.set()
    assert closed.wait(5)  # the connect closed what it made, as nobody will
    done = BackgroundCluster("tcp://h:3", lambda: Made(), 2, 1)
    assert done.client == "client"  # asked for: connected then
    assert not done.connecting and done.abandon() is False


def test_a_doorbell_wakes_its_thread_once_and_close_without_the_callback(tmp_path: Path) -> None:
    """fgo.fileio.Doorbell: a ring from anyone (here this process; fgo cacheprog in a
    build) calls the callback once; nobody listening, a ring says False; `close` wakes the
    thread without the callback."""
    import threading
    from fgo.fileio import Doorbell, ring
    assert ring(tmp_path / "none") is False
    rung = threading.Event()
    bell = Doorbell(tmp_path / "bell")
    bell.on_ring(rung.set)
    deadline = time.monotonic() + 5
    while not ring(bell.path):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert rung.wait(5)
    assert ring(bell.path) is False  # rung already: nobody listens any more
    quiet = threading.Event()
    other = Doorbell(tmp_path / "other")
    other.on_ring(quiet.set)
    time.sleep(0.1)
    other.close()
    time.sleep(0.2)
    assert not quiet.is_set()


def test_a_scratch_dir_outlasts_a_late_writer_and_never_hides_the_error(tmp_path: Path) -> None:
    """fgo.fileio.scratch_dir: a process still writing into it as it goes (a stopped go
    build's cacheprog writing its counters) delays its removal instead of raising
    ENOTEMPTY over the error that stopped the build."""
    import threading
    from fgo.errors import FgoError
    from fgo.fileio import remove_tree, scratch_dir
    busy = tmp_path / "busy"
    (busy / "sub").mkdir(parents=True)
    until = time.monotonic() + 0.3

    def write() -> None:  # files keep appearing while the removal runs
        n = 0
        while time.monotonic() < until:
            try:
                (busy / "sub" / f"f{n}").write_bytes(b"x")
            except OSError:
                (busy / "sub").mkdir(parents=True, exist_ok=True)
            n += 1
    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.02)
    assert remove_tree(busy, 5.0)
    writer.join()
    if busy.exists():  # the writer's last file came after: the next removal takes it
        assert remove_tree(busy, 0.0)
    assert not busy.exists()
    with pytest.raises(FgoError, match="cannot reach"):
        with scratch_dir("fgo-test-") as tmp:
            left = Path(tmp)
            (left / "stats.json").write_text("{}")
            raise FgoError("cannot reach the scheduler")
    assert not left.exists()


def test_a_clusters_size_is_remembered_by_its_scheduler(tmp_path: Path, monkeypatch) -> None:
    from fgo.report.record import last_cluster, remember_cluster
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path))
    assert last_cluster("tcp://h:1") is None and last_cluster(None) is None
    remember_cluster({"cluster": {"scheduler": "tcp://h:1", "workers": 2, "threads": 4,
                                  "local_slots": 2}})
    remember_cluster({"cluster": {"scheduler": "tcp://h:2", "workers": 0, "threads": 0}})
    remember_cluster({"cluster": {"scheduler": None, "workers": 0, "threads": 0}})
    assert last_cluster("tcp://h:1") == {"scheduler": "tcp://h:1", "workers": 2, "threads": 4}
    assert last_cluster("tcp://h:2") is None  # an unreachable one is not remembered


def test_failing_workers_are_remembered_by_their_scheduler(tmp_path: Path, monkeypatch) -> None:
    """A build that learned its workers writes the workers to leave out; one that did not
    (a no-op that never connected) keeps what the last one wrote; a damaged file leaves
    nobody out."""
    from fgo.report import record
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path))
    sizes = {"scheduler": "tcp://h:1", "workers": 2, "threads": 2}
    failing = {"tcp://w:1": {"times": 1.0, "until": 1e12}}
    assert record.failing_in(record.last_cluster("tcp://h:1")) == {}
    record.remember_cluster({"cluster": {**sizes, "failing_hosts": failing}})
    assert record.failing_in(record.last_cluster("tcp://h:1")) == failing
    record.remember_cluster({"cluster": sizes})  # learned nothing
    assert record.failing_in(record.last_cluster("tcp://h:1")) == failing
    record.remember_cluster({"cluster": {**sizes, "failing_hosts": {}}})  # proven good, forgotten
    assert record.failing_in(record.last_cluster("tcp://h:1")) == {}
    for damaged in ('{"failing": [1]}', '{"failing": {"h": {"until": "x"}}}', "not json"):
        record.remembered_cluster_path("tcp://h:1").write_text(damaged)
        assert record.failing_in(record.last_cluster("tcp://h:1")) == {}


def test_the_helpers_namespace_hashes_go_s_compiler_once(tmp_path: Path, monkeypatch) -> None:
    """fgo cacheprog names its namespace from the go that started it (GOTOOLDIR, GOVERSION):
    the compiler's hash is remembered by its version, not read again at every start (28 MB:
    30 ms of every go build through the helper)."""
    import hashlib
    from fgo.cache.local import namespace, running_namespace
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path / "cache"))
    tools = tmp_path / "tool"
    tools.mkdir()
    (tools / "compile").write_bytes(b"a compiler")
    environ = {"GOTOOLDIR": str(tools), "GOVERSION": "go1.27.3"}
    first = running_namespace(environ)
    assert first == namespace(toolchain.Identity("go1.27.3",
                                                 hashlib.sha256(b"a compiler").hexdigest()))
    monkeypatch.setattr(toolchain, "file_sha256", lambda path: pytest.fail("hashed again"))
    assert running_namespace(environ) == first


@pytest.mark.parametrize("fallback", [False, True])
def test_a_scheduler_not_reached_beside_go_build_stops_it_or_falls_back(
        fallback: bool, capsys, tmp_path: Path) -> None:
    """fgo.head.driver._Connected: the connect of a rebuild, begun when its cacheprog rings
    the doorbell (its first miss), fails while go build runs. The helper is told (an empty
    index: every miss its own); without --fallback-local go build is stopped (its abort
    set), with it the build goes on locally, and says so."""
    from fgo.cluster.connect import BackgroundCluster, Cluster, ClusterError
    from fgo.fileio import ring
    from fgo.head.driver import _Connected
    from fgo.head.options import BuildOptions

    def refused() -> Cluster:
        raise ClusterError("cannot reach scheduler tcp://h:1: refused")

    class Shared:
        index_coming = False
        told = 0
        want = tmp_path / "want"

        def no_cluster(self) -> None:
            self.told += 1
    shared = Shared()
    cluster = BackgroundCluster("tcp://h:1", refused, 2, 1)
    connected = _Connected(cluster, BuildOptions(project=".", fallback_local=fallback),
                           shared)
    connected.start()
    time.sleep(0.2)
    assert not cluster.begun and connected.connecting  # nothing has asked for it yet
    deadline = time.monotonic() + 5
    while not ring(shared.want):  # the helper's ring (its doorbell thread may be starting)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    connected._thread.join(10)
    assert cluster.begun and not connected.connecting
    assert connected.join() is None
    connected.close()
    assert shared.index_coming and shared.told == 1
    assert isinstance(connected.error, ClusterError)
    assert connected.abort.is_set() is not fallback
    said = capsys.readouterr().err
    assert ("building locally (--fallback-local)" in said) is fallback


def test_run_build_retries_a_library_without_o(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/lib\n\ngo 1.27\n")
    (tmp_path / "lib.go").write_text("package lib\n\nfunc F() int { return 1 }\n")
    out = tmp_path / "out"
    out.mkdir()
    proc = toolchain.run_build([str(toolchain.go_binary()), "build"], ["-o", f"{out}/", "."],
                               cwd=tmp_path, env=toolchain.go_env(GOCACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr
    assert list(out.iterdir()) == [] and proc.args[-1] == "." and "-o" not in proc.args


def test_a_worker_sharing_the_heads_files_reads_paths_and_stages_outputs(tmp_path: Path) -> None:
    """The same compile, its inputs as bytes and then as paths with `deliver`: the staged
    output beside the destination equals the bytes sent back; the destination is untouched
    (only the head moves a staged output into place) and nothing crossed as bytes."""
    from dataclasses import replace
    src = tmp_path / "src" / "p.go"
    src.parent.mkdir()
    src.write_bytes(b"package p\n\nfunc F() int { return 42 }\n")
    out = tmp_path / "w" / "b001" / "_pkg_.a"
    out.parent.mkdir(parents=True)
    call = compileargs.parse(["-o", str(out), "-p", "p", "-complete", "-pack", str(src)],
                             str(tmp_path))
    sha = sha256(src.read_bytes())
    task = _task(call, {str(src): sha}, {sha: src.read_bytes()})
    sent = executor.execute(task)
    assert sent.ok and sent.exit == 0, sent.output
    executor.worker_store().root.joinpath(sha[:2], sha).unlink()  # the store forgets the blob
    near = executor.execute(replace(task, blobs={}, blob_paths={sha: (str(src), False)},
                                    deliver=True))
    assert near.ok and near.exit == 0, near.output
    assert near.outputs == {} and set(near.delivered) == {str(out)} and not out.exists()
    staged, size = near.delivered[str(out)]
    assert staged.startswith(str(out) + ".fgo-")
    assert Path(staged).read_bytes() == sent.outputs[str(out)] and size == len(sent.outputs[str(out)])
    assert near.output_sha256 == sent.output_sha256


def test_a_worker_holds_its_archive_for_the_publish_and_a_heads_check_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace
    from fgo.cache import held
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path / "cache"))
    held.clear()
    src = tmp_path / "p.go"
    src.write_bytes(b"package p\n\nfunc F() int { return 7 }\n")
    out = tmp_path / "b001" / "_pkg_.a"
    call = compileargs.parse(["-o", str(out), "-p", "p", "-complete", "-pack", "-buildid",
                              "abcdefghijklmnopqrst/abcdefghijklmnopqrst", str(src)],
                             str(tmp_path))
    sha = sha256(src.read_bytes())
    task = _task(call, {str(src): sha}, {sha: src.read_bytes()})
    try:
        checked = executor.execute(task, "head")
        assert checked.ok and checked.exit == 0, checked.output
        assert held.read(checked.output_sha256) is None
        remote = executor.execute(replace(task, task_id="u"), "tcp://w1")
        assert remote.output_sha256 == checked.output_sha256
        assert held.read(remote.output_sha256) == remote.outputs[str(out)]
    finally:
        held.clear()


def test_only_a_worker_that_reads_the_token_shares_files(tmp_path: Path) -> None:
    token = tmp_path / "host-token"
    token.write_text("abc")
    me = toolchain.identity()
    assert service.hello(wire.Hello(me, (str(token), "abc")), 1).shares_files is True
    assert service.hello(wire.Hello(me, (str(token), "abd")), 1).shares_files is False
    assert service.hello(wire.Hello(me, (str(tmp_path / "absent"), "abc")), 1).shares_files \
        is False
    assert service.hello(wire.Hello(me), 1).shares_files is False


def test_a_store_is_named_by_itself_not_by_host_and_path(tmp_path: Path) -> None:
    """Emulated or containerised hosts share host name and store path: only the name kept
    in the store tells two disks apart; two workers on one store agree on it."""
    one, same, other = Store(tmp_path / "a"), Store(tmp_path / "a"), Store(tmp_path / "b")
    assert one.identity() == same.identity() != other.identity()
    assert one.identity() == Store(tmp_path / "a").identity()  # kept across processes
    assert one.inventory() == []  # the name is not a blob


def test_placement_counts_speculations_apart() -> None:
    """A speculative compile takes only a free thread; a real compile is placed as if it
    were not there (it runs niced beside it)."""
    from fgo.head.placement import Placement
    p = Placement()
    p.add_worker("w1", 1, "s1", set())
    p.add_worker("w2", 1, "s2", {"x"})
    assert p.choose_speculative({"x": 10}) == "w2"     # free, and holds the input
    assert p.free_threads() == 1
    assert p.choose({"x": 10}) == "w1"        # real: a wholly free worker first
    assert p.choose({"x": 10}) == "w2"        # then beside the speculation, which yields
    assert p.choose_speculative({}) is None   # no thread free for another
    p.finished("w2", [], [], speculative=True)
    assert p.workers["w2"].speculating == 0 and p.workers["w2"].running == 1


def test_a_files_hash_is_remembered_until_the_file_changes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path / "cache"))
    tool = tmp_path / "compile"
    tool.write_bytes(b"one")
    assert toolchain.remembered_sha256(tool) == sha256(b"one")
    memo = json.loads((tmp_path / "cache" / "file-sha256.json").read_text())
    assert memo[str(tool)][-1] == sha256(b"one")
    memo[str(tool)][-1] = "remembered"   # a remembered hash is not recomputed...
    (tmp_path / "cache" / "file-sha256.json").write_text(json.dumps(memo))
    assert toolchain.remembered_sha256(tool) == "remembered"
    tool.unlink()
    tool.write_bytes(b"three")          # ...but a changed file (size, mtime or inode) is
    assert toolchain.remembered_sha256(tool) == sha256(b"three")


def test_a_cross_check_on_a_worker_that_stopped_answering_gives_up_and_cancels(
        tmp_path: Path) -> None:
    """A cross-check waits at most its deadline (policy.cross_check_deadline): a worker
    stopped under it (SIGSTOP keeps its connections open) is told to cancel, and the check
    fails over to the head instead of holding the link for --timeout (the fault campaign's
    one hang)."""
    import concurrent.futures

    from fgo.blobs import Blob
    from fgo.head.policy import RemoteFailure
    from fgo.head.tasks import Tasks

    src = tmp_path / "a.go"
    src.write_text("package a\n")
    told: list[tuple[str, str]] = []

    class Pool:
        identity = toolchain.identity()

        def choose_check(self, needs: dict, avoid: str) -> str:
            return "w2"

        def transfer(self, address: str, needs: dict, from_goroot: object = ()
                     ) -> tuple[list[str], list[str]]:
            return list(needs), []

        def shares(self, address: str) -> bool:
            return False

        def takes_goroot(self, address: str) -> bool:
            return False

        def submit(self, address: str, op: str, message: object) -> concurrent.futures.Future:
            return concurrent.futures.Future()          # never answered

        def tell(self, address: str, op: str, message: object) -> None:
            told.append((address, op))

        def finished(self, *args: object, **kw: object) -> None:
            pass

    call = compileargs.parse(["-o", str(tmp_path / "a.a"), "-p", "a", str(src)], str(tmp_path))
    inputs = {str(src): Blob("s" * 64, src.stat().st_size, str(src), False)}
    run = Tasks(Pool()).cross_job(call, {}, inputs, 0.2)("w1")  # type: ignore[arg-type]
    with pytest.raises(RemoteFailure, match="cross-check on w2: no answer within 0.2s"):
        run()
    assert told == [("w2", wire.OP_CANCEL)]


def test_only_the_embedded_clusters_workers_compile_in_place_and_only_what_runs_now(
        tmp_path: Path) -> None:
    """A worker of the embedded cluster (the head's child) that reads the head's token reads
    the head's files at their paths; a worker of a scheduler's cluster on the same host may
    see other files there (it hashes what it is pointed to). A speculation or a cross-check,
    run later, carries its blobs."""
    from fgo.blobs import Blob
    from fgo.head.pool import WorkerPool
    from fgo.head.tasks import Tasks

    class Embedded:
        local = True

    class Scheduler:
        local = None

    pools = {}
    for cluster, expected in ((Embedded(), True), (Scheduler(), False)):
        pool = pools[expected] = WorkerPool(cluster, str(tmp_path))
        pool.shares_files.add("tcp://w1")
        pool.placement.add_worker("tcp://w1", 1, "host:/store", set())
        assert pool.in_place("tcp://w1") is expected and not pool.in_place("tcp://w2")
    src = tmp_path / "a.go"
    src.write_text("package a\n")
    call = compileargs.parse(["-o", str(tmp_path / "a.a"), "-p", "a", str(src)], str(tmp_path))
    inputs = {str(src): Blob("s" * 64, src.stat().st_size, str(src), False)}
    tasks = Tasks(pools[True])
    task, sent = tasks.for_worker("tcp://w1", call, {}, inputs)
    assert task.in_place and task.deliver and sent == [] and task.inputs == {str(src): "s" * 64}
    assert not task.blobs and not task.blob_paths and not task.wait_for
    later, sent = tasks.for_worker("tcp://w1", call, {}, inputs, now=False)
    assert not later.in_place and sent == ["s" * 64] and later.blob_paths  # by path, hashed
    assert not Tasks.with_bytes(task, inputs, ["s" * 64]).in_place


def test_the_head_leaves_its_goroots_sources_out_for_a_worker_that_takes_its_own(
        tmp_path: Path) -> None:
    """A worker that says it takes std sources from its own GOROOT is sent none of them (not
    as bytes, not as paths) and none is counted as stored there; export data and files
    outside GOROOT's src/ travel as before; a worker that answered one missing is sent them
    all from then on; a worker that never said so gets them all."""
    from fgo.blobs import Blob
    from fgo.head.pool import WorkerPool
    from fgo.head.tasks import Tasks, goroot_sources

    class Scheduler:
        local = None

    root = tmp_path / "go"
    (root / "src" / "errors").mkdir(parents=True)
    std = root / "src" / "errors" / "errors.go"
    std.write_text("package errors\n")
    mine = tmp_path / "a.go"
    mine.write_text("package a\n")
    export = root / "src" / "x.a"  # an archive's export data, even under GOROOT: sent
    export.write_bytes(b"!<arch>\n")
    inputs = {str(std): Blob("e" * 64, 15, str(std), False),
              str(mine): Blob("a" * 64, 10, str(mine), False),
              str(export): Blob("x" * 64, 8, str(export), True)}
    assert goroot_sources(inputs, str(root)) == {"e" * 64}
    assert goroot_sources(inputs, str(root) + "/") == {"e" * 64}
    assert goroot_sources(inputs, str(tmp_path / "other")) == set()
    pool = WorkerPool(Scheduler(), str(tmp_path))
    for w in ("tcp://w1", "tcp://w2"):
        pool.placement.add_worker(w, 1, f"{w}:/store", set())
    pool.goroot_sources.add("tcp://w1")
    tasks = Tasks(pool)
    call = compileargs.parse(["-o", str(tmp_path / "a.a"), "-p", "a", str(std), str(mine)],
                             str(tmp_path))
    env = {"GOROOT": str(root)}
    task, sent = tasks.for_worker("tcp://w1", call, env, inputs)
    assert task.from_goroot == ["e" * 64] and sorted(sent) == ["a" * 64, "x" * 64]
    assert set(task.blobs) == {"a" * 64, "x" * 64} and task.inputs[str(std)] == "e" * 64
    assert Tasks.bytes_from_goroot(task, inputs) == 15
    pool.finished("tcp://w1", sent, list(task.inputs.values()))
    assert pool.placement.stored["tcp://w1:/store"] == {"a" * 64, "x" * 64}
    other, sent = tasks.for_worker("tcp://w2", call, env, inputs)
    assert other.from_goroot == [] and "e" * 64 in other.blobs
    resent = Tasks.with_bytes(task, inputs, ["e" * 64])
    assert resent.from_goroot == [] and "e" * 64 in resent.blobs
    pool.goroot_unshared("tcp://w1")
    again, sent = tasks.for_worker("tcp://w1", call, env, inputs)
    assert again.from_goroot == [] and sent == ["e" * 64]


def test_a_worker_drops_the_profiler_and_slows_its_monitors() -> None:
    """fgo's service quiets Dask's housekeeping on a `dask worker`: the profiler stops, the
    tick and the monitors slow down, everything else is left to this plan (the heartbeat:
    slow_heartbeat), and nothing is made more frequent."""
    plan = service.housekeeping_plan({"profile": 10, "profile-cycle": 1000, "tick": 20,
                                      "monitor": 500, "memory_monitor": 100, "heartbeat": 1000,
                                      "keep-alive": 1000})
    assert plan == {"profile": None, "profile-cycle": None, "tick": 1000, "monitor": 5000,
                    "memory_monitor": 1000}
    assert service.housekeeping_plan({"tick": 2000, "memory_monitor": 1000}) == {}

    class Callback:
        def __init__(self, ms: float) -> None:
            self.callback_time, self.running = ms, True

        def stop(self) -> None:
            self.running = False
    periodic = {"profile": Callback(10), "tick": Callback(20), "heartbeat": Callback(1000)}
    profile = periodic["profile"]
    service.quiet_housekeeping(periodic)
    # stopped, and out of the dict whose callbacks the worker starts after its preloads
    assert not profile.running and set(periodic) == {"tick", "heartbeat"}
    assert periodic["tick"].callback_time == 1000 and periodic["heartbeat"].callback_time == 1000


def test_a_worker_heartbeats_no_more_than_each_two_seconds() -> None:
    """fgo's service slows a worker's heartbeat to one each HEARTBEAT_MS, and keeps it so
    when the scheduler's answer sets Dask's 0.5 s again; installed twice, it wraps once."""
    import asyncio

    from tornado.ioloop import PeriodicCallback
    beats = []

    async def beat() -> None:  # Dask's Worker.heartbeat: sets the interval the scheduler asks
        beats.append(1)
        heartbeat.callback_time = 500

    heartbeat = PeriodicCallback(beat, 500)
    service.slow_heartbeat(heartbeat)
    service.slow_heartbeat(heartbeat)
    assert heartbeat.callback_time == service.HEARTBEAT_MS == 2000
    asyncio.run(heartbeat.callback())
    assert beats == [1] and heartbeat.callback_time == 2000
    service.slow_heartbeat(None)  # a worker without one (not yet registered)


def test_a_race_the_head_won_is_not_counted_as_go_building_alone() -> None:
    """A remote compile the head raced and won is recorded as a local run with no slot of
    the shim's: it is fgo's work, not a compile go build ran without fgo (`by_go`)."""
    from fgo.report.record import ActionRecord, Recorder, summarize
    won = ActionRecord(package="p/a", tool="compile", mode="local", start=0.0,
                       race={"winner": "head", "why": "critical path"})
    alone = ActionRecord(package="p/b", tool="compile", mode="local", start=0.0)
    slot = ActionRecord(package="p/c", tool="compile", mode="local", start=0.0, slot=0)
    t = summarize(Recorder(), [won, alone, slot], 1.0)["totals"]
    assert (t["by_go"], t["raced_won"], t["slot"]) == (1, 1, 1)


def test_a_large_output_streams_in_chunks_and_lands_whole(tmp_path: Path) -> None:
    """The worker sends outputs above the threshold as OutputChunks (hashing the -o one as
    it reads it); the head writes them aside as they come and hands them on as staged files
    only when every one came whole; anything else fails the result and leaves no file."""
    from fgo.head.policy import RemoteFailure
    from fgo.head.remote import Received
    from fgo.compilecall import CompileCall
    box = tmp_path / "box"
    out, small = str(tmp_path / "w" / "_pkg_.a"), str(tmp_path / "w" / "x.o")
    Path(tmp_path / "w").mkdir()
    data = bytes(range(256)) * 40_000 + b"end"               # 10 MB: three chunks
    call = CompileCall(args=[], cwd="/", outputs=[out, small], inputs=[])
    written = sandbox.output_paths(str(box), call)            # where the compiler wrote
    Path(written[out]).parent.mkdir(parents=True)
    Path(written[out]).write_bytes(data)
    Path(written[small]).write_bytes(b"small")
    sent: list[wire.OutputChunk] = []
    streamed, digest = sandbox.stream_outputs(call, str(box), 1 << 20, sent.append)
    assert streamed == {out: len(data)} and digest == sha256(data) and len(sent) == 3
    assert sandbox.read_outputs(call, str(box), skip=streamed) == {small: b"small"}
    chunks = [wire.decode(wire.encode(c), wire.OutputChunk) for c in sent]  # over the wire

    received = Received(call.outputs)
    for c in reversed(chunks):                              # by offset, in any order
        received.chunk(c)
    result = received.into(CompileResult(Status.OK, "w", streamed=streamed,
                                         outputs={small: b"small"}))
    staged, size = result.delivered[out]
    received.close()
    assert size == len(data) and Path(staged).read_bytes() == data
    assert staged.startswith(out + ".fgo-")                  # what _write_outputs moves

    short = Received(call.outputs)
    short.chunk(chunks[0])
    with pytest.raises(RemoteFailure):
        short.into(CompileResult(Status.OK, "w", streamed=streamed))
    short.close()
    elsewhere = Received(call.outputs)
    elsewhere.chunk(wire.OutputChunk(str(tmp_path / "evil"), 0, b"x"))
    with pytest.raises(RemoteFailure):
        elsewhere.into(CompileResult(Status.OK, "w", streamed={str(tmp_path / "evil"): 1}))
    elsewhere.close()
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["_pkg_.a" + staged[len(out):]]
    assert not (tmp_path / "evil").exists()


def test_a_speculative_compiler_runs_niced_and_a_real_one_does_not() -> None:
    """The worker nices a speculative compile's process (its real compiles come first), the
    same way the head nices its sampled checks' compilers (runner._lower)."""
    from fgo.worker import runner
    base = os.getpriority(os.PRIO_PROCESS, 0)
    spec = runner.run("s", ["sh", "-c", "nice"], "/", dict(os.environ), speculative="/o/s.a")
    real = runner.run("r", ["sh", "-c", "nice"], "/", dict(os.environ))
    assert (int(spec.output), int(real.output)) == (min(19, base + runner.SPECULATIVE_NICE), base)


def test_a_workers_whole_compile_runs_nicer_than_the_worker() -> None:
    from fgo.worker import runner
    base = os.getpriority(os.PRIO_PROCESS, 0)
    niced = runner.run("n", ["sh", "-c", "nice"], "/", dict(os.environ), nice=3)
    assert int(niced.output) == min(19, base + 3)
    leader = runner.start("l", ["sh", "-c", "nice"], "/", dict(os.environ), nice=3)  # a split's
    assert leader is not None and int(runner.finish("l", leader).output) == min(19, base + 3)
    assert runner.compile_nice(None) == runner.compile_nice("") == runner.COMPILE_NICE
    assert runner.compile_nice("0") == 0 and runner.compile_nice("7") == 7
    assert runner.compile_nice("40") == 19 and runner.compile_nice("-5") == 0
    assert runner.compile_nice("lots") == runner.COMPILE_NICE


def test_a_split_starts_only_when_it_cannot_deadlock_another() -> None:
    """Two K = 3 splits on 2 worker threads held each other's shards behind their leaders
    for 600 s (tests/test_split.py, large_generated[3]): a split starts alone, or beside
    others only while all their processes fit the threads."""
    from fgo.head.policy import split_may_start
    assert split_may_start(3, 0, 2)          # alone: its extra shard queues before its leader
    assert not split_may_start(3, 3, 2)      # beside another: the deadlock
    assert split_may_start(2, 2, 4) and not split_may_start(3, 2, 4)


def test_a_split_leader_shares_no_worker_with_its_shards_when_it_can() -> None:
    from fgo.head.policy import leader_first
    assert leader_first(["A", "B", "A"]) == ["B", "A", "A"]   # K = 3 on two workers
    assert leader_first(["A", "B", "C"]) == ["A", "B", "C"]
    assert leader_first(["A", "A", "B", "B"]) == ["A", "A", "B", "B"]  # none alone: as given


def test_a_leader_that_could_hold_its_shards_thread_is_sent_after_them() -> None:
    """A leader waits for its shards: on a worker of fewer threads than the split's
    processes there, it may take the last while a shard queues behind it, for ever (a
    head that knew one 1-thread worker yet put both halves of a forced split there); such
    a split's leader is sent once those shards have ended."""
    from fgo.head.policy import leader_waits_on_itself
    assert leader_waits_on_itself(["A", "A"], 1)
    assert not leader_waits_on_itself(["A", "A"], 2)
    assert not leader_waits_on_itself(["B", "A", "A"], 1)   # its shards queue elsewhere
    assert leader_waits_on_itself(["A", "A", "B", "B"], 1)
    assert leader_waits_on_itself(["A"], 0)                 # a worker not known: no thread


def test_the_heads_cpu_per_compile_is_told_with_and_without_its_connect() -> None:
    """A connect beside go build (Dask's import, once a build) is part of the head's CPU
    while go build ran only when it ran wholly within it; the report gives the per-compile
    figure with it and without it."""
    from types import SimpleNamespace

    from fgo.head.driver import _connect_cpu_within
    from fgo.report.record import head_cost
    inside = SimpleNamespace(cpu_s=0.4, span=(10.0, 11.0))
    assert _connect_cpu_within(inside, (9.0, 20.0)) == 0.4
    assert _connect_cpu_within(inside, (10.5, 20.0)) is None   # began before go build
    assert _connect_cpu_within(inside, (9.0, 10.5)) is None    # ended after it
    assert _connect_cpu_within(SimpleNamespace(cpu_s=None, span=None), (0, 1)) is None
    assert _connect_cpu_within(None, (0.0, 1.0)) is None       # no cluster, or not beside
    cost = head_cost(2.0, 1.2, 200, 90.0, 0.4)
    assert cost["build_cpu_per_remote_ms"] == 6.0
    assert cost["build_cpu_per_remote_ms_less_connect"] == 4.0
    assert "connect_cpu_s" not in head_cost(2.0, 1.2, 200)


def test_a_process_dir_sweeps_what_gone_processes_of_this_host_left(tmp_path: Path) -> None:
    """A worker's sandboxes and held archives live in a directory named for its host and
    pid: made empty at its first use, with the directories of this host's processes that
    are gone (a worker killed mid-compile) removed, and those of live ones and of other
    hosts (a shared home) left alone."""
    import socket
    import subprocess

    from fgo.fileio import pid_alive, process_dir
    host = socket.gethostname()
    gone = subprocess.Popen(["true"])
    gone.wait()
    for name in (f"p{host}-{gone.pid}", f"p{host}-1", f"p{host}-{os.getpid()}",
                 "pother-host-999999999", "t00legacy"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "left.a").write_bytes(b"x")
    own = process_dir(tmp_path, "p")
    assert own == tmp_path / f"p{host}-{os.getpid()}" and list(own.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"p{host}-1", own.name, "pother-host-999999999", "t00legacy"])
    assert pid_alive("1") and not pid_alive(str(gone.pid)) and not pid_alive("t00legacy")


def test_the_head_shares_its_malloc_arenas() -> None:
    """A cluster build's head caps glibc's malloc arenas (fgo.head.pool): a thread per
    channel and the dispatch threads each kept an arena's worth of freed frames."""
    import platform

    from fgo.head import pool
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert pool.share_malloc_arenas(8)  # this test process: back to a roomy default


def test_the_waits_ask_the_scheduler_for_live_workers_at_most_every_live_every_s(
        tmp_path, monkeypatch) -> None:
    """Every wait of a remote compile asks `live()`; the scheduler is asked once per
    LIVE_EVERY_S for all of them, its last answer kept between; a scheduler that misses
    LATE_LIVENESS answers in a row has nobody alive."""
    from fgo.cluster.deadline import Late
    from fgo.head import pool as pool_mod

    now = [1000.0]

    class Clock:   # the pool module's `time`, its monotonic clock stepped by hand
        @staticmethod
        def monotonic() -> float:
            return now[0]

        def __getattr__(self, name: str):
            return getattr(time, name)
    monkeypatch.setattr(pool_mod, "time", Clock())
    asked: list[float] = []
    answers = [["tcp://w1", "tcp://w2"], ["tcp://w1"]]

    def within(seconds, fn, *args, **kwargs):
        asked.append(now[0])
        if not answers:
            raise Late("no answer")
        return answers.pop(0)
    monkeypatch.setattr(pool_mod, "within", within)

    class Client:
        run_on_scheduler = None

    class Scheduler:
        local = None
        client = Client()

    pool = pool_mod.WorkerPool(Scheduler(), str(tmp_path))
    assert pool.live() == {"tcp://w1", "tcp://w2"}
    for dt in (0.5, 1.0, 1.5, pool_mod.LIVE_EVERY_S - 0.01):  # the last answer, unasked
        now[0] = 1000.0 + dt
        assert pool.live() == {"tcp://w1", "tcp://w2"}
    assert asked == [1000.0]
    now[0] = 1000.0 + pool_mod.LIVE_EVERY_S + 0.01
    assert pool.live() == {"tcp://w1"} and len(asked) == 2
    for k in range(1, pool_mod.LATE_LIVENESS + 1):   # late answers: the last one kept ...
        now[0] += pool_mod.LIVE_EVERY_S + 0.01
        alive = pool.live()
        assert alive == (set() if k == pool_mod.LATE_LIVENESS else {"tcp://w1"}), k
    assert len(asked) == 2 + pool_mod.LATE_LIVENESS   # ... until LATE_LIVENESS in a row
