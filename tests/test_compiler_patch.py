"""The patched compiler: builds from patches/, is stock without its flags, and its shard +
leader compile reproduces the stock archive byte for byte. Real compiles, no mocks.

The broad package set (runtime, net/http, cmd/compile/internal/ssa, ...) is measured with
`fgo split-compile`; this file keeps a small but meaningful set so CI stays within minutes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from fgo.compiler import flags as cpflags, patched as cp
from fgo.compiler import harness as sc
from fgo.toolchain import file_sha256, go_version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def patched() -> Path:
    return cp.ensure_compiler().path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("proj")
    (d / "go.mod").write_text("module example.com/splittest\n\ngo 1.27\n")
    (d / "p").mkdir()
    # Closures, generics, a func value of a closure, floats (constant symbols), a switch
    # (jump table), defer, append with a stack backing store, interfaces.
    (d / "p" / "p.go").write_text('''package p

import "fmt"

type T struct{ a, b int }

func (t *T) String() string { return fmt.Sprint(t.a, t.b) }

func Map[E, R any](s []E, f func(E) R) []R {
	var r []R
	for _, e := range s {
		r = append(r, f(e))
	}
	return r
}

var Hook = func(x int) int { return x * 3 }

func F(xs []int) []string {
	return Map(xs, func(x int) string { return fmt.Sprintf("%d:%g", x, float64(x)*1.5) })
}

func Sw(x int) int {
	switch x {
	case 1:
		return 10
	case 2:
		return 22
	case 3:
		return 35
	case 4:
		return 47
	case 5:
		return 51
	case 6:
		return 64
	}
	return 0
}

func D(n int) (r int) {
	defer func() { r += n }()
	buf := make([]int, 0, 4)
	for i := 0; i < n; i++ {
		buf = append(buf, i)
	}
	var s fmt.Stringer = &T{n, len(buf)}
	_ = s.String()
	return len(buf)
}
''')
    (d / "q").mkdir()
    # Method expressions of methods declared in other packages, used as values in a function
    # body: the backend creates their function-value symbols (p.(*T).String·f), which the
    # leader must be able to replay when another shard compiled that function.
    (d / "q" / "q.go").write_text('''package q

import (
	"strings"

	"example.com/splittest/p"
)

type Hooks struct {
	Str func(*p.T) string
	Bld func(*strings.Builder) string
	Val func() string
}

func New(t *p.T) *Hooks {
	return &Hooks{Str: (*p.T).String, Bld: (*strings.Builder).String, Val: t.String}
}

func Use(h *Hooks, t *p.T) string {
	var b strings.Builder
	b.WriteString(h.Str(t))
	return h.Bld(&b) + h.Val()
}
''')
    return d


@pytest.fixture(scope="module")
def commands(project, tmp_path_factory) -> dict[str, tuple[list[str], Path]]:
    pkgs = ["container/list", "strconv", "unicode/utf8", "sort", "fmt", "example.com/splittest/p",
            "example.com/splittest/q"]
    sc._go(["build", *pkgs], project)
    work = tmp_path_factory.mktemp("work")
    return {p: sc.compile_command(project, p, work / p.replace("/", "_")) for p in pkgs}


def test_series_hash_is_stable_and_covers_patches():
    files = cp.patch_files()
    assert [f.name for f in files] == sorted(f.name for f in files)
    h = cp.series_hash()
    assert h == cp.series_hash() and len(h) == 64
    assert cp.toolchain_dir().name == f"{go_version()}-{h[:12]}"
    for f in files:
        for rel in cp.touched_files(f):
            assert rel.startswith("src/cmd/"), rel


def test_build_is_cached(patched):
    again = cp.ensure_compiler()
    assert again.path == patched and not again.built
    out = subprocess.run([str(patched), "-V=full"], capture_output=True, text=True, check=False)
    assert go_version() in out.stdout


@pytest.mark.parametrize("pkg", ["container/list", "strconv", "fmt", "example.com/splittest/p"])
def test_no_flag_is_stock(patched, commands, tmp_path, pkg):
    argv, cwd = commands[pkg]
    outs = []
    for name, tool in (("stock", argv[0]), ("patched", str(patched))):
        out = tmp_path / f"{name}.a"
        a = sc._set_output([tool, "-c=1", *argv[1:]], out)
        subprocess.run(a, cwd=cwd, check=True, capture_output=True)
        outs.append(file_sha256(out))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("pkg,k,extra", [
    ("container/list", 2, []),
    ("strconv", 2, []),
    ("unicode/utf8", 2, []),
    ("sort", 2, []),
    ("fmt", 2, []),
    ("fmt", 3, []),
    ("example.com/splittest/p", 2, []),
    ("example.com/splittest/p", 4, []),
    ("strconv", 3, ["-dwarf=false"]),
    ("fmt", 2, ["-dwarf=false"]),
])
def test_shards_merge_identical(patched, commands, tmp_path, pkg, k, extra):
    argv, cwd = commands[pkg]
    r = sc.split_package(argv, cwd, pkg, k, tmp_path, extra=extra, timeout=120)
    assert r.error is None, r.error
    assert r.identical, (r.stock_sha256, r.leader_sha256)
    assert r.functions and r.functions > 0


def test_plan_file_is_honoured(patched, commands, tmp_path):
    argv, cwd = commands["example.com/splittest/p"]
    src = next(a for a in argv if a.endswith("/p/p.go"))
    plan = tmp_path / "plan.txt"
    # Everything named in the plan goes to shard 1; the rest is balanced.
    cpflags.write_plan(plan, [(1, "p/p.go", 19, "F"), (1, src, 23, "Sw"), (1, "p.go", 7, ""), (0, "p.go", 19, "NotF")])
    files = [tmp_path / "s1.res"]
    base = sc._set_output([argv[0], "-c=1", *argv[1:]], tmp_path / "x.a")
    shard = subprocess.Popen(cpflags.with_flags(base, cpflags.shard_flags(1, 2, files[0], plan=plan, stats=tmp_path / "s1.json"),
                                           compiler=patched), cwd=cwd)
    leader = subprocess.run(cpflags.with_flags(sc._set_output(base, tmp_path / "l.a"),
                                          cpflags.leader_flags(2, files, plan=plan, timeout=60), compiler=patched),
                            cwd=cwd, capture_output=True, text=True, check=False)
    assert shard.wait() == 0
    assert leader.returncode == 0, leader.stderr
    stock = sc._set_output(base, tmp_path / "stock.a")
    subprocess.run(stock, cwd=cwd, check=True)
    assert file_sha256(tmp_path / "l.a") == file_sha256(tmp_path / "stock.a")
    import json
    st = json.loads((tmp_path / "s1.json").read_text())
    assert st["my_funcs"] >= 3  # F, Sw and String at least


@pytest.mark.parametrize("k,n", [(1, 2), (2, 3), (0, 2)])
def test_imported_method_expression_on_a_shard(patched, commands, tmp_path, k, n):
    """The function taking method expressions of imported methods is compiled by shard K of N
    (by plan); the leader replays their function-value symbols and matches stock."""
    argv, cwd = commands["example.com/splittest/q"]
    plan = tmp_path / "plan.txt"
    cpflags.write_plan(plan, [(k, "q/q.go", 15, "New")])
    base = sc._set_output([argv[0], "-c=1", *argv[1:]], tmp_path / "x.a")
    files = [tmp_path / f"s{i}.res" for i in range(1, n)]
    shards = [subprocess.Popen(cpflags.with_flags(base, cpflags.shard_flags(i, n, files[i - 1], plan=plan), compiler=patched),
                               cwd=cwd) for i in range(1, n)]
    leader = subprocess.run(cpflags.with_flags(sc._set_output(base, tmp_path / "l.a"),
                                          cpflags.leader_flags(n, files, plan=plan, timeout=60), compiler=patched),
                            cwd=cwd, capture_output=True, text=True, check=False)
    assert all(s.wait() == 0 for s in shards)
    assert leader.returncode == 0, leader.stderr
    subprocess.run(sc._set_output(base, tmp_path / "stock.a"), cwd=cwd, check=True)
    assert file_sha256(tmp_path / "l.a") == file_sha256(tmp_path / "stock.a")


# --- refusals ---------------------------------------------------------------------------------

def _env(env):
    return {**os.environ, **env} if env else None


def _leader(patched, argv, cwd, tmp_path, files, n=2, timeout=5, extra=(), env=None):
    out = tmp_path / "leader.a"
    out.write_bytes(b"stale")
    a = cpflags.with_flags(sc._set_output([argv[0], "-c=1", *extra, *argv[1:]], out),
                      cpflags.leader_flags(n, files, timeout=timeout), compiler=patched)
    proc = subprocess.run(a, cwd=cwd, capture_output=True, text=True, check=False, env=_env(env))
    return proc, out


def _shard(patched, argv, cwd, tmp_path, k, n, res, extra=(), env=None):
    a = cpflags.with_flags(sc._set_output([argv[0], "-c=1", *extra, *argv[1:]], tmp_path / f"unused{k}.a"),
                      cpflags.shard_flags(k, n, res), compiler=patched)
    subprocess.run(a, cwd=cwd, check=True, capture_output=True, env=_env(env))


def _stock(argv, cwd, out, extra=(), env=None):
    subprocess.run(sc._set_output([argv[0], "-c=1", *extra, *argv[1:]], out), cwd=cwd, check=True,
                   env=_env(env))
    return file_sha256(out)


@pytest.fixture
def good_shard(patched, commands, tmp_path):
    argv, cwd = commands["strconv"]
    res = tmp_path / "good.res"
    _shard(patched, argv, cwd, tmp_path, 1, 2, res)
    assert res.exists() and not (tmp_path / "unused1.a").exists()
    return argv, cwd, res


def _assert_refused(proc, out, words):
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert err and err[-1].startswith("fgo: "), proc.stderr
    assert any(w in err[-1] for w in words), err[-1]
    assert "goroutine" not in proc.stderr and "panic" not in proc.stderr
    assert not out.exists(), "no partial or stale archive may remain"


def test_refuses_missing(patched, commands, tmp_path):
    argv, cwd = commands["strconv"]
    proc, out = _leader(patched, argv, cwd, tmp_path, [tmp_path / "never.res"], timeout=1)
    _assert_refused(proc, out, ["did not appear"])


def test_refuses_truncated(patched, good_shard, tmp_path):
    argv, cwd, res = good_shard
    bad = tmp_path / "trunc.res"
    bad.write_bytes(res.read_bytes()[:-100])
    proc, out = _leader(patched, argv, cwd, tmp_path, [bad])
    _assert_refused(proc, out, ["truncated"])


def test_refuses_corrupt(patched, good_shard, tmp_path):
    argv, cwd, res = good_shard
    data = bytearray(res.read_bytes())
    data[len(data) // 2] ^= 0x55
    bad = tmp_path / "corrupt.res"
    bad.write_bytes(bytes(data))
    proc, out = _leader(patched, argv, cwd, tmp_path, [bad])
    _assert_refused(proc, out, ["corrupt"])
    bad.write_bytes(b"not a shard result at all")
    proc, out = _leader(patched, argv, cwd, tmp_path, [bad])
    _assert_refused(proc, out, ["not a shard result"])


def _split_leading(patched, argv, cwd, tmp_path, shard_start, leader_start):
    """fmt split in two, each process with its -fgoleadstart (None: the default): the
    leader's process and the functions it compiled itself."""
    res, stats = tmp_path / "s1.res", tmp_path / "l.json"
    base = sc._set_output([argv[0], "-c=1", *argv[1:]], tmp_path / "unused.a")
    subprocess.run(cpflags.with_flags(base, cpflags.shard_flags(1, 2, res, lead_start=shard_start),
                                      compiler=patched), cwd=cwd, check=True, capture_output=True)
    leader = subprocess.run(cpflags.with_flags(
        sc._set_output(base, tmp_path / "leader.a"),
        cpflags.leader_flags(2, [res], timeout=30, stats=stats, lead_start=leader_start),
        compiler=patched), cwd=cwd, capture_output=True, text=True, check=False)
    mine = json.loads(stats.read_text())["my_funcs"] if leader.returncode == 0 else None
    return leader, mine


def test_lead_start_moves_the_leaders_share(patched, commands, tmp_path):
    """-fgoleadstart given to both processes: below the default, the leader compiles more of
    the functions itself; the archive is still stock's."""
    argv, cwd = commands["fmt"]
    stock = _stock(argv, cwd, tmp_path / "stock.a")
    shares = {}
    for start in (None, -200):
        leader, shares[start] = _split_leading(patched, argv, cwd, tmp_path, start, start)
        assert leader.returncode == 0, leader.stderr
        assert file_sha256(tmp_path / "leader.a") == stock
    assert shares[-200] > shares[None], shares


def test_refuses_another_lead_start(patched, commands, tmp_path):
    """A shard given another -fgoleadstart than its leader dealt the functions otherwise:
    refused (the assignment is in the fingerprint), never merged."""
    argv, cwd = commands["fmt"]
    (tmp_path / "leader.a").write_bytes(b"stale")
    leader, _ = _split_leading(patched, argv, cwd, tmp_path, None, -200)
    _assert_refused(leader, tmp_path / "leader.a", ["fingerprint"])


def test_refuses_other_fingerprint(patched, good_shard, tmp_path):
    argv, cwd, res = good_shard
    proc, out = _leader(patched, argv, cwd, tmp_path, [res], extra=["-dwarf=false"])
    _assert_refused(proc, out, ["fingerprint"])


# Settings the compiler takes from the environment or derives past the flag package (patch
# 0017): a shard compiled with others is refused by name, equal ones merge into stock's archive.
# fmt is a package whose code -d=ssa/dse/off changes; unicode/utf8 imports nothing, so a shard
# with another GOAMD64 gets as far as the merge (elsewhere the import of a dependency compiled
# for another GOAMD64 already fails).
amd64_only = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="GOAMD64 is amd64's")


def test_refuses_other_debug_settings(patched, commands, tmp_path):
    """GOCOMPILEDEBUG=ssa/dse/off in the shard only (fgo's `wrong-shard` fault): the shard's
    digests and frontend agree with the leader's, its code does not."""
    argv, cwd = commands["fmt"]
    res = tmp_path / "dse.res"
    _shard(patched, argv, cwd, tmp_path, 1, 2, res, env={"GOCOMPILEDEBUG": "ssa/dse/off"})
    proc, out = _leader(patched, argv, cwd, tmp_path, [res], timeout=60)
    _assert_refused(proc, out, ["other settings"])
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "was compiled with other settings: shard debug ssa/dse/off; leader none"), proc.stderr
    # the other way round, and a -d flag counts as GOCOMPILEDEBUG does
    res = tmp_path / "plain.res"
    _shard(patched, argv, cwd, tmp_path, 1, 2, res)
    proc, out = _leader(patched, argv, cwd, tmp_path, [res], timeout=60, extra=["-d=ssa/dse/off,nil=1"])
    _assert_refused(proc, out, ["other settings"])
    assert "shard debug nil=0; leader debug nil=1, debug ssa/dse/off" in proc.stderr, proc.stderr


@amd64_only
def test_refuses_other_goamd64(patched, commands, tmp_path):
    argv, cwd = commands["unicode/utf8"]
    res = tmp_path / "v3.res"
    _shard(patched, argv, cwd, tmp_path, 1, 2, res, env={"GOAMD64": "v3"})
    proc, out = _leader(patched, argv, cwd, tmp_path, [res], timeout=60, env={"GOAMD64": "v1"})
    _assert_refused(proc, out, ["other settings"])
    assert "other settings: shard GOAMD64=v3; leader GOAMD64=v1" in proc.stderr, proc.stderr


@pytest.mark.parametrize("pkg,leader_extra,leader_env,shard_env,stock_extra,stock_env", [
    # the same setting given as a flag to the leader and in the environment to the shard
    ("fmt", ["-d=ssa/dse/off"], {}, {"GOCOMPILEDEBUG": "ssa/dse/off"}, ["-d=ssa/dse/off"], {}),
    ("fmt", [], {"GOCOMPILEDEBUG": "ssa/dse/off"}, {"GOCOMPILEDEBUG": "ssa/dse/off"}, [],
     {"GOCOMPILEDEBUG": "ssa/dse/off"}),
    pytest.param("unicode/utf8", [], {"GOAMD64": "v3"}, {"GOAMD64": "v3"}, [], {"GOAMD64": "v3"},
                 marks=amd64_only),
], ids=["dse-flag-and-env", "dse-env", "goamd64-v3"])
def test_equal_settings_merge_identical(patched, commands, tmp_path, pkg, leader_extra, leader_env,
                                        shard_env, stock_extra, stock_env):
    argv, cwd = commands[pkg]
    res = tmp_path / "s1.res"
    _shard(patched, argv, cwd, tmp_path, 1, 2, res, env=shard_env)
    proc, out = _leader(patched, argv, cwd, tmp_path, [res], timeout=60, extra=leader_extra, env=leader_env)
    assert proc.returncode == 0, proc.stderr
    want = _stock(argv, cwd, tmp_path / "stock.a", extra=stock_extra, env=stock_env)
    assert file_sha256(out) == want
    assert want != _stock(argv, cwd, tmp_path / "plain.a"), "the setting should change this package's code"


def test_shard_with_inputs_elsewhere_is_accepted(patched, commands, tmp_path):
    """A shard that reads its importcfg from another path and has another -trimpath rule
    (as in a worker's sandbox) still matches the leader's fingerprint."""
    argv, cwd = commands["strconv"]
    a = list(argv)
    i = a.index("-importcfg")
    moved = tmp_path / "elsewhere" / "importcfg"
    moved.parent.mkdir()
    moved.write_bytes(Path(a[i + 1]).read_bytes())
    a[i + 1] = str(moved)
    a[a.index("-trimpath") + 1] += ";" + str(tmp_path) + "=>"
    res = tmp_path / "moved.res"
    _shard(patched, a, cwd, tmp_path, 1, 2, res)
    proc, out = _leader(patched, argv, cwd, tmp_path, [res])
    assert proc.returncode == 0, proc.stderr
    stock = tmp_path / "stock.a"
    subprocess.run(sc._set_output([argv[0], "-c=1", *argv[1:]], stock), cwd=cwd, check=True)
    assert file_sha256(out) == file_sha256(stock)


def test_refuses_wrong_shard(patched, commands, tmp_path):
    argv, cwd = commands["strconv"]
    r1, r2 = tmp_path / "r1.res", tmp_path / "r2.res"
    _shard(patched, argv, cwd, tmp_path, 1, 3, r1)
    _shard(patched, argv, cwd, tmp_path, 2, 3, r2)
    proc, out = _leader(patched, argv, cwd, tmp_path, [r2, r1], n=3)
    _assert_refused(proc, out, ["want 1/3"])


def test_refuses_bad_flags(patched, commands, tmp_path):
    argv, cwd = commands["strconv"]
    a = [str(patched), "-fgoshard=2/2", "-fgoout=" + str(tmp_path / "x"), *argv[1:]]
    proc = subprocess.run(a, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and proc.stderr.startswith("fgo: -fgoshard=2/2")
    a = [str(patched), "-fgoshard=1/2", "-fgoout=" + str(tmp_path / "x"), "-pgoprofile=/nonexistent", *argv[1:]]
    proc = subprocess.run(a, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "not supported" in proc.stderr


def test_flag_helpers():
    assert cpflags.shard_flags(1, 3, "/r") == ["-fgoshard=1/3", "-fgoout=/r"]
    assert cpflags.shard_flags(1, 3, "/r", lead_start=-200)[-1] == "-fgoleadstart=-200"
    assert cpflags.leader_flags(2, ["/a"], lead_start=0)[-1] == "-fgoleadstart=0"
    assert cpflags.leader_flags(3, ["/a", "/b"], timeout=7) == ["-fgoshard=0/3", "-fgoleader=/a,/b", "-fgotimeout=7"]
    assert cpflags.with_flags(["compile", "-o", "x", "a.go"], ["-f"]) == ["compile", "-f", "-o", "x", "a.go"]
    with pytest.raises(ValueError):
        cpflags.shard_flags(0, 2, "/r")
    with pytest.raises(ValueError):
        cpflags.leader_flags(3, ["/a"])


# --- CLI --------------------------------------------------------------------------------------

def _fgo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fgo.cli", *args], capture_output=True, text=True, check=False)


def test_cli_toolchain(patched):
    proc = _fgo("toolchain")
    assert proc.returncode == 0 and proc.stdout.strip() == str(patched)


def test_cli_split_compile(project, patched):
    proc = _fgo("split-compile", "--shards", "2", "--json", str(project), "--", "./p", "container/list")
    assert proc.returncode == 0, proc.stderr
    import json
    doc = json.loads(proc.stdout)
    assert doc["all_identical"] and [p["package"] for p in doc["packages"]] == ["example.com/splittest/p",
                                                                                "container/list"]
    assert all(p["shard_s"] and p["merge_s"] is not None for p in doc["packages"])


def test_cli_split_compile_bad_input(tmp_path):
    proc = _fgo("split-compile", str(tmp_path / "nope"), "--", "fmt")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
