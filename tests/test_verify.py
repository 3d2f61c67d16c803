"""fgo verify: the comparison core on controlled differences, the variants hook, and a
real run of `fgo verify` (plain go build vs -c=1 vs -c=4, empty caches) on a small module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FGO, GOPATH_ENV, clean_env, require_gopath

from fgo import toolchain
from fgo.verify import builds as fv
from fgo.verify import check as fc

LIB_SRC = """package lib

// Double returns 2*x.
//go:noinline
func Double(x int) int { return x * 2 }

//go:noinline
func Triple(x int) int { return x * 3 }
"""

MAIN_SRC = """package main

import "example.com/tiny/lib"

func main() { println(lib.Double(21), lib.Triple(2)) }
"""


def write_module(root: Path, lib_src: str = LIB_SRC) -> Path:
    (root / "lib").mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text("module example.com/tiny\n\ngo 1.27\n")
    (root / "main.go").write_text(MAIN_SRC)
    (root / "lib" / "lib.go").write_text(lib_src)
    return root


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's GOCACHE (conftest): shared with test_diff's builds, so the runtime
    is compiled once per session. (`fgo verify` itself always uses empty caches.)"""
    cache = os.environ.get("GOCACHE")
    return Path(cache) if cache else tmp_path_factory.mktemp("vcache")


def build_into(project: Path, out: Path, cache: Path, *flags: str) -> fv.BuildResult:
    """A real build through the hook's helpers, with a cache shared by the tests
    (so only the first one compiles the runtime)."""
    out.mkdir(parents=True, exist_ok=True)
    env = toolchain.go_env(GOCACHE=str(cache))
    req = fv.BuildRequest(project, ["."], ["-trimpath", *flags], out, cache, env)
    return fv.BuildResult(out.name, "", fv.go_build(req))


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> dict[str, fv.BuildResult]:
    root = tmp_path_factory.mktemp("vbuilds")
    good = write_module(root / "good")
    bad = write_module(root / "bad", LIB_SRC.replace("x * 3", "x * 5"))
    out = {
        "a": build_into(good, root / "a", shared_cache),
        "b": build_into(good, root / "b", shared_cache),
        "changed": build_into(bad, root / "changed", shared_cache),
    }
    if shutil.which("gcc"):
        flags = ["-ldflags=-linkmode=external -extldflags=-Wl,--build-id=uuid"]
        out["uuid1"] = build_into(good, root / "uuid1", shared_cache, *flags)
        out["uuid2"] = build_into(good, root / "uuid2", shared_cache, *flags)
    return out


def test_go_build_variant_collects_binaries_and_archives(builds):
    a = builds["a"].output
    assert list(a.binaries) == ["tiny"]
    assert "example.com/tiny/lib" in a.archives and "runtime" in a.archives
    order = list(a.archives)  # dependency order: main last, its deps before it
    assert order[-1] == "example.com/tiny"
    assert order.index("internal/abi") < order.index("runtime")
    assert all(p.is_file() for p in a.archives.values())


def test_same_build_matches(builds):
    c = fv.compare_builds(builds["a"], builds["b"])
    assert c.matched and c.strict and not c.differing_packages
    assert c.packages_identical == c.packages_compared > 20
    assert [b.status for b in c.binaries] == ["identical"]


def test_changed_function_is_the_first_difference(builds):
    """Injected difference: lib.Triple's body; the report pins it, in dependency order."""
    c = fv.compare_builds(builds["a"], builds["changed"])
    assert not c.matched
    assert c.differing_packages[0] == "example.com/tiny/lib"
    assert c.first_difference is not None
    assert c.first_difference.functions == ["example.com/tiny/lib.Triple"]
    assert "example.com/tiny/lib.Triple" in fv.render(fv.VerifyReport(
        "p", ["."], [], [], [c], False))
    assert [b.status for b in c.binaries] == ["differs"]
    assert not c.link  # an archive differs: not a link problem


@pytest.mark.skipif(not shutil.which("gcc"), reason="no host C linker")
def test_link_only_difference_names_the_link_and_the_flag(builds):
    c = fv.compare_builds(builds["uuid1"], builds["uuid2"])
    assert not c.matched and not c.differing_packages
    assert c.packages_identical == c.packages_compared
    assert [b.status for b in c.binaries] == ["differs"]
    assert c.link[0].startswith("no package archive differs")
    assert any("host linker" in l for l in c.link)
    assert "-ldflags=-linkmode=internal" in c.flags


def test_variants_hook_runs_registered_builders(builds, tmp_path):
    """The hook: named variants are functions from BuildRequest to BuildOutput."""
    seen: list[fv.BuildRequest] = []

    def canned(result: fv.BuildResult):
        def build(req: fv.BuildRequest) -> fv.BuildOutput:
            seen.append(req)
            assert req.out_dir.is_dir() and req.gocache.is_dir() and not any(req.gocache.iterdir())
            assert req.env["GOCACHE"] == str(req.gocache)
            return result.output
        return build

    base = fv.Variant("base", canned(builds["a"]), "", "canned baseline")
    same = fv.Variant("same", canned(builds["b"]), "", "canned rebuild")
    changed = fv.Variant("changed", canned(builds["changed"]), "", "canned changed")
    r = fv.run_verify(tmp_path, [base, same, changed], go_flags=["-trimpath"], workdir=tmp_path / "w")
    assert len(seen) == 3 and seen[0].go_flags == ["-trimpath"] and seen[0].packages == ["."]
    assert len({str(q.gocache) for q in seen}) == 3
    assert not r.matched
    assert r.comparisons[0].matched and not r.comparisons[1].matched
    j = fv.report_dict(r)
    json.dumps(j)
    assert j["comparisons"][1]["first_difference"]["functions"] == ["example.com/tiny/lib.Triple"]
    fv.register_variant(fv.Variant("test-extra", canned(builds["a"])))
    assert "test-extra" in fv.VARIANTS
    del fv.VARIANTS["test-extra"]


def test_verify_command_on_a_small_module(tmp_path):
    """The real thing: plain go build, -c=1, -c=4, each with an empty GOCACHE."""
    project = write_module(tmp_path / "tiny")
    r = subprocess.run([FGO, "verify", "--json", str(project), "--", "-trimpath"],
                       check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = json.loads(r.stdout)
    assert j["matched"] is True
    assert [b["variant"] for b in j["builds"]] == fv.DEFAULT_VARIANTS
    for c in j["comparisons"]:
        assert c["matched"] and c["packages_compared"] > 20 and not c["differing_packages"]
    # -c=1 vs -c=4 binaries have build info of the same size: compared (equivalent)
    assert j["comparisons"][1]["binaries"][0]["status"] == "equivalent"
    assert not list(tmp_path.glob("fgo-verify-*"))


def test_verify_takes_go_build_args_after_the_separator(tmp_path):
    """`fgo verify PROJECT -- FLAGS PATTERNS`: flags go to every build, patterns select the
    packages, and a user's -o is dropped (each variant builds into its own directory)."""
    project = write_module(tmp_path / "tiny")
    r = subprocess.run([FGO, "verify", "--json", "-v", "go", "-v", "go", str(project), "--",
                        "-trimpath", "-o", str(tmp_path / "h"), "./lib", "."],
                       check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = json.loads(r.stdout)
    assert j["matched"] is True
    assert j["packages"] == ["./lib", "."] and j["go_flags"] == ["-trimpath"]
    assert j["comparisons"][0]["packages_compared"] > 20
    assert not (tmp_path / "h").exists()


def test_verify_bad_input(tmp_path):
    for args in (["verify", str(tmp_path / "nope")],
                 ["verify", "-v", "go", str(tmp_path)],
                 ["verify", "-v", "nosuch", "-v", "go", str(tmp_path)]):
        r = subprocess.run([FGO, *args], check=False, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    # a project that does not build: one line, exit 2
    (tmp_path / "go.mod").write_text("module example.com/broken\n\ngo 1.27\n")
    (tmp_path / "lib.go").write_text("package broken\n\nfunc F() { undefined() }\n")
    r = subprocess.run([FGO, "verify", "-v", "go", "-v", "go", str(tmp_path)],
                       check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("fgo verify: variant go:")


def test_variant_flags_merge_with_the_users():
    assert fv.merge_flags(["-gcflags=all=-c=1"], ["-trimpath"]) == ["-gcflags=all=-c=1", "-trimpath"]
    assert fv.merge_flags(["-gcflags=all=-c=4"], ["-gcflags=all=-N -l", "-v"]) == \
        ["-gcflags=all=-N -l -c=4", "-v"]
    assert list(fv.VARIANTS)[:3] == fv.DEFAULT_VARIANTS


def test_list_archives_refuses_to_compile_what_the_build_did_not(tmp_path):
    """A variant that did not fill its GOCACHE must not be 'verified' by go list's own compile."""
    write_module(tmp_path / "m")
    cache = tmp_path / "cache"
    cache.mkdir()
    req = fv.BuildRequest(tmp_path / "m", ["./lib"], [], tmp_path / "out", cache,
                          toolchain.go_env(GOCACHE=str(cache)))
    with pytest.raises(fv.VerifyError, match="not in the build's GOCACHE"):
        fv.list_archives(req)
    assert list(fv.list_archives(req)) == ["example.com/tiny/lib"]  # now it is cached


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FGO_VERIFY_CORPUS"),
                    reason="3 full builds of gin take minutes on 2 cores; set FGO_VERIFY_CORPUS=1")
def test_verify_gin_gopath_mode():
    """Corpus project: gin in GOPATH mode (Debian's golang-github-gin-gonic-gin-dev)."""
    gin = require_gopath("github.com/gin-gonic/gin", "golang-github-gin-gonic-gin-dev")
    r = subprocess.run([FGO, "verify", "--json", str(gin)], check=False, capture_output=True,
                       text=True, timeout=3600, env=clean_env(**GOPATH_ENV))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = json.loads(r.stdout)
    assert j["matched"] and all(c["packages_compared"] > 200 for c in j["comparisons"])


def test_adhoc_go_flags_variant():
    v = fv.variant_by_name("go:-gcflags=all=-l -trimpath")
    assert v is not None and v.flags_key == "-gcflags=all=-l -trimpath"
    assert fv.variant_by_name("go-c4") is fv.VARIANTS["go-c4"]
    assert fv.variant_by_name("go:") is None and fv.variant_by_name("nosuch") is None


def test_verify_distributed_and_split_variants(tmp_path):
    """fgo itself under verify: embedded cluster, every package split in 2, and pipelined,
    each with an empty GOCACHE, byte-identical to plain go build (archives, build IDs, binary)."""
    project = write_module(tmp_path / "tiny")
    r = subprocess.run([FGO, "verify", "--json", "-v", "go", "-v", "fgo", "-v", "fgo-split2",
                        "-v", "fgo-pipelined", str(project)], check=False, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = json.loads(r.stdout)
    assert j["matched"] is True
    assert [b["variant"] for b in j["builds"]] == ["go", "fgo", "fgo-split2", "fgo-pipelined"]
    for c in j["comparisons"]:
        assert c["matched"] and c["packages_compared"] > 20 and not c["differing_packages"]


# ------------------------------------------------------------------ fgo build --check's comparison


def _files(d: Path, contents: dict[str, bytes]) -> dict[str, str]:
    """CONTENTS (import path -> bytes) as files in D: import path -> file."""
    d.mkdir(parents=True)
    for name, data in contents.items():
        (d / name.replace("/", "_")).write_bytes(data)
    return {name: str(d / name.replace("/", "_")) for name in contents}


def test_check_fails_on_a_package_missing_on_either_side(tmp_path):
    """--check compares every archive either build has: one only fgo's build has is
    'missing on the plain side', one only the plain build has 'missing in fgo's build',
    with the reason when the action graph named it but the cache lacked it."""
    mine = fc.Outputs(_files(tmp_path / "a", {"p/x": b"same", "p/onlyfgo": b"extra"}),
                      missing={"p/lost": "GOCACHE has no archive for action ID abc"})
    plain = fc.Outputs(_files(tmp_path / "b", {"p/x": b"same", "p/onlyplain": b"extra",
                                               "p/lost": b"here"}))
    checks = fc.compare_outputs("archive", mine, plain, fc._sha, fc._explain_archive)
    by = {c["name"]: c for c in checks}
    assert [c["name"] for c in checks] == sorted(by) == ["p/lost", "p/onlyfgo", "p/onlyplain", "p/x"]
    assert by["p/x"]["ok"] and by["p/x"]["detail"].startswith("sha256 ")
    assert not by["p/onlyfgo"]["ok"] and by["p/onlyfgo"]["detail"] == "missing on the plain side"
    assert not by["p/onlyplain"]["ok"] and by["p/onlyplain"]["detail"] == "missing in fgo's build"
    assert by["p/lost"]["detail"] == "missing in fgo's build (GOCACHE has no archive for action ID abc)"
    assert all(set(c) == {"what", "name", "ok", "detail"} and c["what"] == "archive" for c in checks)
    # nothing on one side is all failures, never an empty (passing) list
    assert [c["ok"] for c in fc.compare_outputs("binary", fc.Outputs(), plain, fc._sha,
                                                 fc._explain_binary)] == [False] * 3


def test_check_byte_mismatch_names_the_first_differing_symbol(builds):
    """Byte-level: two real archives and binaries whose lib.Triple differs; the detail
    names the member and the symbol, for the archive and for the binary."""
    lib = "example.com/tiny/lib"
    a, changed = builds["a"].output, builds["changed"].output
    checks = fc.compare_outputs("archive", fc.Outputs({lib: str(a.archives[lib]),
                                                       "runtime": str(a.archives["runtime"])}),
                                fc.Outputs({lib: str(changed.archives[lib]),
                                            "runtime": str(changed.archives["runtime"])}),
                                fc._sha, fc._explain_archive)
    assert [c["ok"] for c in checks] == [False, True]
    assert "_go_.o: first differing symbol example.com/tiny/lib.Triple" in checks[0]["detail"]
    assert "(fgo) != " in checks[0]["detail"]
    [b] = fc.compare_outputs("binary", fc.Outputs({"tiny": str(a.binaries["tiny"])}),
                             fc.Outputs({"tiny": str(changed.binaries["tiny"])}),
                             fc._sha, fc._explain_binary)
    assert not b["ok"] and "first differing symbol example.com/tiny/lib.Triple" in b["detail"]


def test_check_finds_each_archive_through_its_action_id(tmp_path, shared_cache):
    """The archives compared are the ones go's cache holds for the action IDs the build's
    action graph records: every package of a real build, each carrying that build ID."""
    from fgo.verify import goobj
    project = write_module(tmp_path / "m")
    ag = tmp_path / "ag.json"
    env = toolchain.go_env(GOCACHE=str(shared_cache))
    proc = subprocess.run([str(toolchain.go_binary()), "build", "-trimpath", f"-debug-actiongraph={ag}",
                           "-o", str(tmp_path / "bin") + "/", "."], cwd=project, env=env,
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    graph = json.loads(ag.read_text())
    found = fc.archives_of(graph, shared_cache)
    nodes = fc.graph_archives(graph)
    assert not found.missing and set(found.files) == set(nodes) and len(nodes) > 20
    for pkg, path in found.files.items():
        member = next(m for m in goobj.read_ar(Path(path).read_bytes(), path)
                      if m.name in ("__.PKGDEF", "_go_.o"))
        assert goobj.pkgdef_build_id(member.data) == nodes[pkg]["BuildID"], pkg
    assert fc.binaries_of(graph).files == {"example.com/tiny": str(tmp_path / "bin" / "tiny")}
    # an empty cache: every package is missing, with its action ID
    empty = fc.archives_of(graph, tmp_path / "empty")
    assert not empty.files and set(empty.missing) == set(nodes)


def test_check_reads_fgo_cacheprogs_local_tier(tmp_path):
    """With go's cache through fgo cacheprog, the archive is the local tier's body."""
    action_id = "j4Uy0855oAK7ZpXmrfTf"  # HashToString of a hash starting 8f8532...
    prefix = fc.action_hex_prefix(action_id)
    assert prefix == "8f8532d3ce79a002bb6695e6adf4df"
    full = prefix + "4527f15afab6fd752c609a880e92599fcc"
    assert fc.cached_archive(tmp_path, action_id) is None
    tier = tmp_path / "fgo" / "go1.27.3-abc" / full[:2]
    tier.mkdir(parents=True)
    (tier / f"{full}-d").write_bytes(b"!<arch>\n")
    assert fc.cached_archive(tmp_path, action_id) == tier / f"{full}-d"
    # go's own layout first: the index names the output
    out = "f9" + "0" * 62
    (tmp_path / full[:2]).mkdir()
    (tmp_path / full[:2] / f"{full}-a").write_text(f"v1 {full} {out} 8 1\n")
    (tmp_path / out[:2]).mkdir(exist_ok=True)
    (tmp_path / out[:2] / f"{out}-d").write_bytes(b"!<arch>\n")
    assert fc.cached_archive(tmp_path, action_id) == tmp_path / out[:2] / f"{out}-d"
    assert fc.action_hex_prefix("short") is None and fc.action_hex_prefix("!" * 20) is None


def test_check_plain_build_arguments(tmp_path):
    """The plain build writes into the check's directory, never the user's; adds -o only
    when fgo's build wrote binaries; drops the user's -debug-actiongraph."""
    r = fc._retarget_output
    assert r(["-o", "app", "."], "/T", tmp_path) == ["-o", "/T/app", "."]
    assert r(["./..."], "/T", tmp_path, binaries=False) == ["./..."]
    assert r(["./..."], "/T", tmp_path) == ["-o", "/T/", "./..."]
    assert r(["-o", os.devnull, "."], "/T", tmp_path) == ["-o", os.devnull, "."]
    assert r(["-debug-actiongraph=g.json", "-a", "-debug-actiongraph", "h.json", "."], "/T",
             tmp_path, binaries=False) == ["-a", "."]


# ------------------------------------------------------------------ variation (reprotest-style)


def test_variation_variants_are_registered_and_listed():
    for name in ("go-otherdir", "go-gomaxprocs1", "go-p1", "fgo-workers1", "fgo-workers2"):
        v = fv.variant_by_name(name)
        assert v is not None and v.flags_key == "", name  # held to byte identity
    r = subprocess.run([FGO, "verify", "--help"], check=False, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    for name in fv.VARIANTS:
        assert f"  {name} " in r.stdout, name


def test_run_flags_add_what_a_variant_needs_to_every_build():
    otherdir = fv.VARIANTS["go-otherdir"]
    go = fv.VARIANTS["go"]
    assert fv.run_flags([go, fv.VARIANTS["go-p1"]], ["-v"]) == (["-v"], [])
    assert fv.run_flags([go, otherdir], ["-v"]) == (["-v", "-trimpath", "-buildvcs=false"],
                                                    ["-trimpath", "-buildvcs=false"])
    assert fv.run_flags([go, otherdir], ["-trimpath=true", "-buildvcs=false"]) == \
        (["-trimpath=true", "-buildvcs=false"], [])


def test_distribution_problem():
    ok = {"cluster": {"workers": 1}, "totals": {"remote": 30, "split": 0}}
    assert fv.distribution_problem(ok, 1) is None
    assert "2 worker(s), not 1" in fv.distribution_problem({**ok, "cluster": {"workers": 2}}, 1)
    none = {"cluster": {"workers": 1}, "totals": {"remote": 0, "fallback_reasons": {"x": 3}}}
    assert "no compile ran on a worker" in fv.distribution_problem(none, 1)


def test_otherdir_builds_a_copy_whose_paths_would_differ(tmp_path, shared_cache):
    """go-otherdir really builds elsewhere: without -trimpath the copy's archives name
    their new directory (what the run's added -trimpath takes out of the comparison)."""
    project = write_module(tmp_path / "orig")
    env = toolchain.go_env(GOCACHE=str(shared_cache))
    req = fv.BuildRequest(project / "lib", ["."], [], tmp_path / "a", shared_cache, env)
    moved = fv.relocate(req, tmp_path / "else")
    assert moved.project == tmp_path / "else" / "module" / "lib"
    assert (moved.project.parent / "go.mod").is_file()  # the whole module, from below its root
    a = fv.BuildResult("orig", "", fv.go_build(req))
    b = fv.BuildResult("copy", "", fv.go_build(fv.replace(moved, out_dir=tmp_path / "b")))
    c = fv.compare_builds(a, b)
    assert not c.matched and c.differing_packages == ["example.com/tiny/lib"]
    archive = b.output.archives["example.com/tiny/lib"].read_bytes()
    assert str(moved.project).encode() in archive and str(req.project).encode() not in archive


def test_verify_variation_variants_on_a_small_module(tmp_path):
    """Another directory, GOMAXPROCS=1, go -p 1, fgo with one worker: each byte-identical
    to the baseline, every archive and the binary, build IDs included."""
    project = write_module(tmp_path / "tiny")
    names = ["go", "go-otherdir", "go-gomaxprocs1", "go-p1", "fgo-workers1"]
    r = subprocess.run([FGO, "verify", "--json", *(a for n in names for a in ("-v", n)),
                        str(project)], check=False, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    j = json.loads(r.stdout)
    assert j["matched"] is True and [b["variant"] for b in j["builds"]] == names
    assert j["added_flags"] == ["-trimpath", "-buildvcs=false"]
    assert j["go_flags"] == ["-trimpath", "-buildvcs=false"]
    for c in j["comparisons"]:
        assert c["strict"] and c["matched"], c["b"]
        assert c["packages_compared"] == c["packages_identical"] > 20
        assert [b["status"] for b in c["binaries"]] == ["identical"]
