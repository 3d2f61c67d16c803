"""The planner: Go source scanning (vs go/ast on all of GOROOT/src), cost model, decisions."""

from __future__ import annotations

import collections
import itertools
import json
import subprocess
import time
from pathlib import Path

import networkx as nx  # type: ignore[import-untyped]
import pytest
from conftest import require_gopath  # a skip with its reason; CI (which installs it) fails

from fgo import toolchain
from fgo.analysis import bench
from fgo.planner import costmodel, critical, decide
from fgo.planner.gosource import (
    ScanError,
    mask,
    read_source,
    scan_files,
    scan_source,
)

HELPER = Path(__file__).parent / "gohelpers" / "astdecls" / "main.go"


def units_of(src: str) -> list[tuple[int, str | None, str, bool, bool, bool]]:
    _, units = scan_source(src, "x.go")
    return [(u.line, u.receiver, u.name, u.is_generic, u.recv_pointer, u.has_body) for u in units]


# ----------------------------------------------------------------------------- lexical corners

CORNERS = r'''package p

import (
	"fmt"
	str "strings"
)

var s = `raw { string with func f() {` // }
var r1 = '{'
var r2 = '\''
var r3 = '"'
var r4 = '`'
var s2 = "esc \" { func g() {} \\"
var s3 = "//not a comment {"
/* block { comment
func h() {}
*/
// line comment { func i() {}
func F[T any, S ~[]T](x S) T { var z = "}"; _ = z; return x[0] }
func (r *R[T]) M() {}
func (R[T]) N() (a, b int) { return }
type R[T any] struct{ x T }
//line foo.go:100
func Directed() {}
func NoBody(x int) int
func Ret() interface{ M() } { return nil }
func Ret2() struct{ a int } { return struct{ a int }{} }
var f = func() { }
type G func()
func init() {}
func init() {}
func _() {}
func Closures() { f := func() {}; g := func(x int) int { return x }; _ = f; _ = g }
var a = 1; func One() {}; func Two() { _ = '}' }
/*line bar.go:200*/func Blocked() {}
func (r (*R[int])) P() {}
func Multi[K comparable, V any, M ~map[K]V](m M) {}
func /* c */ Commented /* { */ () /* } */ {}
var t = []func(){
func() {},
}
func Last() { _ = `
}
func NotReal() {
` }
'''


def test_lexical_corner_cases() -> None:
    got = units_of(CORNERS)
    lines = CORNERS.splitlines()
    names = [(u[1], u[2]) for u in got]
    assert names == [
        (None, "F"), ("R", "M"), ("R", "N"), (None, "Directed"), (None, "NoBody"),
        (None, "Ret"), (None, "Ret2"), (None, "init"), (None, "init"), (None, "_"),
        (None, "Closures"), (None, "One"), (None, "Two"), (None, "Blocked"), ("R", "P"),
        (None, "Multi"), (None, "Commented"), (None, "Last"),
    ]
    for line, _, name, *_ in got:  # each line really holds `func` and the name
        assert "func" in lines[line - 1] and name in lines[line - 1]
    by = {u[2]: u for u in got}
    assert by["F"][3] and by["M"][3] and by["N"][3] and by["Multi"][3] and by["P"][3]
    assert not by["Directed"][3]
    assert by["M"][4] and not by["N"][4] and by["P"][4]
    assert not by["NoBody"][5] and by["Ret"][5]


CORNERS2 = r'''package q
var a = "\\" + "{" // a string ending in an escaped backslash, then "{"
var b = `\` + "}" // a raw string holding one backslash
var c = '\\'; var d = '\u007b'; var e = '\x7d'; var f = '\''
/*/ func NotAFunc1() { */
/* // */ func Real1() {}
// /* func NotAFunc2() {
func Real2() { _ = "*/" }
var g = "//line fake.go:1"
func Real3() {
}
var h = struct{ f func() }{f: func() {
}}
func (x *T) Real4() (func(), error) { return func() {}, nil }
type T struct{ s string `json:"{"` }
func Real5(x interface{ M() }) struct{} { return struct{}{} }
'''


def test_lexical_corner_cases_2() -> None:
    got = units_of(CORNERS2)
    assert [(u[1], u[2]) for u in got] == [(None, "Real1"), (None, "Real2"), (None, "Real3"),
                                           ("T", "Real4"), (None, "Real5")]
    lines = CORNERS2.splitlines()
    for line, _, name, *_ in got:
        assert name in lines[line - 1]
    _, units = scan_source(CORNERS2, "q.go")
    assert all(u.pos == "" for u in units)  # the //line in a string is no directive
    assert [u.n_closures for u in units] == [0, 0, 0, 1, 0]


def test_unit_measures_and_symbols(tmp_path: Path) -> None:
    f = tmp_path / "a.go"
    f.write_text(CORNERS)
    ps = scan_files([f])
    assert ps.package == "p"
    assert ps.imports == ["fmt", "strings"]
    by = {u.name: u for u in ps.units}
    assert by["Closures"].n_closures == 2
    assert by["F"].n_closures == 0
    assert [u.symbol for u in ps.units if u.name == "init"] == ["init.0", "init.1"]
    assert by["M"].symbol == "(*R[...]).M" and by["N"].symbol == "R[...].N"
    assert by["Directed"].pos == "foo.go:100"
    assert by["Blocked"].pos == "bar.go:200"
    assert by["Last"].body_lines == 4 and by["Last"].end_line == by["Last"].line + 3
    assert by["NoBody"].body_chars == 0
    assert by["F"].code_chars < by["F"].body_chars
    assert [u.index for u in ps.units] == list(range(len(ps.units)))


def test_mask_keeps_positions() -> None:
    src = 'x := "a//b" // c\n/* d\ne */ y := `f\ng` + \'\\\'\'\n'
    m = mask(src)
    assert len(m) == len(src)
    assert [i for i, c in enumerate(m) if c == "\n"] == [i for i, c in enumerate(src) if c == "\n"]
    assert "//" not in m and "/*" not in m
    assert m[5:11] == '"    "' and "y := `" in m and m.rstrip().endswith("'  '")


def test_broken_source_raises() -> None:
    with pytest.raises(ScanError):
        scan_source("func f() {}\n", "nopkg.go")
    with pytest.raises(ScanError):
        scan_source("package p\nfunc f() { if x {\n", "open.go")
    with pytest.raises(ScanError):
        scan_source("package p\nfunc f() }\n", "close.go")


def test_bom_and_semicolons() -> None:
    assert units_of("\ufeffpackage p; func A() {}; func (t T) B() {}") == [
        (1, None, "A", False, False, True), (1, "T", "B", False, False, True)]


# ----------------------------------------------------------------------------- vs go/ast

@pytest.fixture(scope="module")
def astdecls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("gohelper") / "astdecls"
    toolchain.run_go(["build", "-o", str(exe), str(HELPER)],
                     env=toolchain.go_env(GOFLAGS="", GO111MODULE="on"))
    return exe


def test_every_goroot_file_matches_go_ast(astdecls: Path) -> None:
    src = toolchain.goroot() / "src"
    files = sorted(str(p) for p in src.rglob("*.go") if p.is_file())
    assert len(files) > 5000
    out = subprocess.run([str(astdecls)], input="\n".join(files), text=True,
                         capture_output=True, check=True).stdout
    expected: dict[str, set] = collections.defaultdict(set)
    status: dict[str, str] = {}
    cur = ""
    for line in out.splitlines():
        p = line.split("\t")
        if p[0] == "F":
            cur = p[1]
            status[cur] = p[2]
        else:
            expected[cur].add((int(p[1]), None if p[2] == "-" else p[2], p[3],
                               p[4] == "1", p[5] == "1", p[6] == "1"))
    assert len(status) == len(files)
    ok = [f for f in files if status[f] == "ok"]
    skipped = [f for f in files if status[f] != "ok"]
    # only deliberately broken test inputs are left out
    assert all("/testdata/" in f for f in skipped), skipped[:5]
    assert len(skipped) < 100
    mismatches: list[tuple[str, object]] = []
    t0 = time.process_time()
    n_units = 0
    for f in ok:
        try:
            _, units = scan_source(read_source(f), f)
        except ScanError as exc:
            mismatches.append((f, str(exc)[:200]))
            continue
        n_units += len(units)
        got = {(u.line, u.receiver, u.name, u.is_generic, u.recv_pointer, u.has_body)
               for u in units}
        if got != expected[f]:
            mismatches.append((f, sorted(got ^ expected[f])[:4]))
    cpu = time.process_time() - t0
    assert not mismatches, mismatches[:10]
    assert n_units == sum(len(expected[f]) for f in ok) > 90000
    print(f"{len(ok)} files, {n_units} functions, planner {cpu:.1f} s CPU")


def test_planner_scans_all_of_ssa() -> None:
    """The whole of cmd/compile/internal/ssa (its cost, ~0.45 s of CPU, is a speed figure,
    not a unit-test assertion: a loaded CI machine once pushed it past a fixed bound)."""
    d = toolchain.goroot() / "src" / "cmd" / "compile" / "internal" / "ssa"
    files = sorted(p for p in d.glob("*.go") if not p.name.endswith("_test.go"))
    ps = scan_files(files)
    assert len(ps.units) > 6000 and ps.total_lines > 400_000


# ----------------------------------------------------------------------------- decisions

class C:
    def __init__(self, F: float, B: float, D: float) -> None:
        self.F, self.B, self.D = F, B, D


O = decide.Overheads(transfer_per_shard=0.3, merge_per_shard=0.2, fixed=0.2)


def test_choose_shards_auto() -> None:
    big = C(4.4, 11.0, 0.5)
    k, why = decide.choose_shards(big, 6000, free_workers=2, o=O)
    assert k == 2 and "gain" in why
    k8, _ = decide.choose_shards(big, 6000, free_workers=16, o=O)
    # argmin of 11/K + 0.5 (K-1): K = 4 or 5
    assert k8 in (4, 5)
    assert decide.split_time(big, k8, O) <= min(decide.split_time(big, j, O) for j in range(2, 9))
    # small package: overheads exceed the gain
    assert decide.choose_shards(C(0.05, 0.2, 0.01), 50, 8, o=O)[0] == 1
    # no free worker but the leader's: no split
    assert decide.choose_shards(big, 6000, 1, o=O)[0] == 1
    # one function: nothing to split
    assert decide.choose_shards(big, 1, 8, o=O)[0] == 1


def test_choose_shards_threshold_and_k() -> None:
    tiny = C(0.01, 0.01, 0.0)
    zero = decide.SplitPolicy(threshold=0.0)
    assert decide.choose_shards(tiny, 2, 8, zero, O)[0] == 2  # 2 funcs cap K
    assert decide.choose_shards(tiny, 1, 8, zero, O)[0] == 1
    assert decide.choose_shards(tiny, 50, 0, decide.SplitPolicy(0.0, 3), O)[0] == 2  # forced
    assert decide.choose_shards(tiny, 50, 8, decide.SplitPolicy(0.0, 3), O)[0] == 3
    mid = C(1.0, 3.0, 0.1)
    assert decide.choose_shards(mid, 500, 8, decide.SplitPolicy(threshold=5.0), O)[0] == 1
    k, why = decide.choose_shards(mid, 500, 8, decide.SplitPolicy(threshold=2.0), O)
    assert k >= 2 and "threshold" in why
    assert decide.choose_shards(mid, 500, 3, decide.SplitPolicy(2.0, 8), O)[0] == 3


def test_partition_balanced_and_deterministic() -> None:
    import random

    rnd = random.Random(7)
    w = [rnd.paretovariate(1.2) for _ in range(3000)]
    for k in (2, 3, 4, 7):
        shards = decide.partition(w, k)
        assert sorted(i for s in shards for i in s) == list(range(len(w)))
        loads = [sum(w[i] for i in s) for s in shards]
        lower = max(sum(w) / k, max(w))
        assert max(loads) <= lower * 4 / 3 + 1e-9
        assert loads[0] == min(loads)  # the leader, who also merges, gets the lightest
        assert shards == decide.partition(list(w), k)
    assert decide.partition([5.0, 1.0, 1.0, 1.0, 1.0], 2) == [[1, 2, 3, 4], [0]]


def test_plan_split() -> None:
    p = decide.plan_split(C(4.4, 11.0, 0.5), [1.0] * 100 + [50.0], 3, o=O)
    assert p.split and p.k in (2, 3) and len(p.shards) == p.k
    assert abs(sum(p.shard_loads) - 11.0) < 1e-9
    assert p.predicted_split < p.predicted_whole
    json.dumps(p.to_json())
    q = decide.plan_split(C(0.01, 0.02, 0.0), [1.0, 1.0], 8, o=O)
    assert not q.split and q.shards == [] and q.predicted_split == q.predicted_whole


def by_priority(ready: list[str], prio: dict[str, float]) -> list[str]:
    """READY packages in dispatch order: critical path first, ties by name."""
    return sorted(ready, key=lambda n: (-prio.get(n, 0.0), str(n)))


def test_critical_path() -> None:
    g = nx.DiGraph()  # a -> b: a imports b
    g.add_edges_from([("main", "x"), ("main", "y"), ("x", "rt"), ("y", "rt"), ("y", "z"),
                      ("z", "rt")])
    cost = {"main": 1.0, "x": 10.0, "y": 2.0, "z": 3.0, "rt": 4.0}
    prio = critical.critical_path_priority(g, cost)
    assert prio == {"main": 1.0, "x": 11.0, "y": 3.0, "z": 6.0, "rt": 15.0}
    assert critical.critical_path(g, cost) == ["rt", "x", "main"]
    assert by_priority(["y", "z", "x"], prio) == ["x", "z", "y"]
    nx.set_node_attributes(g, cost, "cost")
    assert critical.critical_path_priority(g) == prio


def test_critical_path_of_real_go_list() -> None:
    """go list -deps -json of a real package -> graph -> critical path ends at the target."""
    out = toolchain.run_go(["list", "-deps", "-json", "net/http"]).stdout
    pkgs = json.loads("[" + out.replace("}\n{", "},\n{") + "]")
    g = critical.graph_from_go_list(pkgs)
    assert nx.is_directed_acyclic_graph(g) and g.has_edge("net/http", "net/url")
    # cost ~ number of .go files (a stand-in for the model's prediction)
    cost = {p["ImportPath"]: float(len(p.get("GoFiles", []))) for p in pkgs}
    path = critical.critical_path(g, cost)
    assert path[-1] == "net/http"
    assert not list(g.successors(path[0]))  # the chain starts at a package with no imports
    assert all(g.has_edge(b, a) for a, b in itertools.pairwise(path))
    prio = critical.critical_path_priority(g, cost)
    assert prio[path[0]] == max(prio.values())
    assert abs(prio[path[0]] - sum(cost[p] for p in path)) < 1e-9


# ----------------------------------------------------------------------------- cost model

def test_nnls_recovers_coefficients() -> None:
    import random

    rnd = random.Random(1)
    rows = [[1.0, rnd.uniform(0, 1e6), rnd.uniform(0, 100)] for _ in range(200)]
    ys = [0.5 + 2e-6 * r[1] + 0.0 * r[2] for r in rows]
    coef = costmodel.nnls(rows, ys)
    assert abs(coef[0] - 0.5) < 1e-6 and abs(coef[1] - 2e-6) < 1e-12 and coef[2] >= 0
    # a negative true coefficient is clamped to 0
    coef = costmodel.nnls(rows, [1.0 - 1e-3 * r[2] + 1e-6 * r[1] for r in rows])
    assert min(coef) >= 0.0


def load_samples(log: Path) -> list[dict]:
    """Records of a collection log, the last one per package path."""
    by_pkg: dict[str, dict] = {}
    for line in log.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            by_pkg[rec["pkg"]] = rec
    return list(by_pkg.values())


def test_bench_collection_real(tmp_path: Path) -> None:
    """The stock compiler's -bench output, collected through go build -toolexec."""
    log = tmp_path / "bench.jsonl"
    costmodel.collect_bench(["container/list", "unicode/utf8"], log,
                            gocache=tmp_path / "cache")
    recs = load_samples(log)
    assert {r["pkg"] for r in recs} == {"container/list", "unicode/utf8"}
    for r in recs:
        f, b, d = bench.fbd(r["phases"])
        assert f > 0 and b > 0 and d > 0
        assert abs(f + b + d - r["phases"]["total"]) < 0.01
    samples = costmodel.samples_from_logs([log])
    assert len(samples) == 2 and all(s["features"]["funcs"] > 10 for s in samples)


def test_fitted_model_on_real_packages() -> None:
    data = json.loads(costmodel.FIT_FILE.read_text())
    rep = data["report"]
    assert rep["n_samples"] >= 300
    # cross-validated (every package predicted by a model that did not see it)
    assert rep["held_out_total_ge_1s"]["n"] >= 10
    assert rep["held_out_total_ge_1s"]["mape_total"] < 40
    src = toolchain.goroot() / "src"

    def cost(rel: str) -> costmodel.Cost:
        d = src / rel
        return costmodel.predict(scan_files(sorted(
            p for p in d.glob("*.go") if not p.name.endswith("_test.go")
            and "windows" not in p.name and "plan9" not in p.name)))

    ssa, lst = cost("cmd/compile/internal/ssa"), cost("container/list")
    # measured (stock -c=1, 2 cores): ssa F 4.4 s, B 11 s, D 0.5 s; container/list ~20 ms
    assert 2.0 < ssa.F < 12 and 5 < ssa.B < 25 and 0.1 < ssa.D < 2
    assert lst.total < 0.2
    assert ssa.B > ssa.F and ssa.total > 50 * lst.total


def test_scan_package_dir_and_plan() -> None:
    from fgo.planner import plan, scan_package_dir

    ps = scan_package_dir(toolchain.goroot() / "src" / "container" / "list")
    assert ps.package == "list" and ps.imports == []
    assert {u.symbol for u in ps.units} >= {"New", "(*List).PushBack", "(*Element).Next"}
    assert not plan(ps, free_workers=4).split  # ~20 ms: never worth it
    assert plan(ps, 4, decide.SplitPolicy(threshold=0.0, shards=2)).k == 2

    d = toolchain.goroot() / "src" / "cmd" / "compile" / "internal" / "ssa"
    ssa = scan_files(sorted(p for p in d.glob("*.go") if not p.name.endswith("_test.go")))
    p = plan(ssa, free_workers=2)
    assert p.split and p.k == 2 and "gain" in p.reason
    assert sorted(i for s in p.shards for i in s) == list(range(len(ssa.units)))
    assert max(p.shard_loads) / min(p.shard_loads) < 1.02
    names = p.symbols(ssa.units)
    assert len(set(names[0]) & set(names[1])) < 5 and "(*Value).String" in names[0] + names[1]
    assert plan(ssa, free_workers=1).k == 1


def test_corner_cases_agree_with_go_ast(astdecls: Path, tmp_path: Path) -> None:
    paths = []
    for i, src in enumerate((CORNERS, CORNERS2)):
        p = tmp_path / f"c{i}.go"
        p.write_text(src)
        paths.append(str(p))
    out = subprocess.run([str(astdecls)], input="\n".join(paths), text=True,
                         capture_output=True, check=True).stdout
    assert out.count("\tok\n") == 2
    expected = sorted(tuple(line.split("\t")[1:]) for line in out.splitlines()
                      if line.startswith("D"))
    got = sorted((str(u.line), u.receiver or "-", u.name, str(int(u.is_generic)),
                  str(int(u.recv_pointer)), str(int(u.has_body)))
                 for p in paths for u in scan_source(read_source(p), p)[1])
    assert got == expected


# ----------------------------------------------------------------------------- giant packages

AWS_EC2 = Path("/usr/share/gocode/src/github.com/aws/aws-sdk-go/service/ec2")


def test_value_methods_weigh_a_wrapper(tmp_path: Path) -> None:
    src = tmp_path / "p.go"
    src.write_text("package p\n\ntype T struct{ a int }\n\n"
                   "func (t T) V() int { return t.a }\n"
                   "func (t *T) P() int { return t.a }\n"
                   "func F() int { return 1 }\n")
    scan = scan_files([src])
    assert scan.features()["value_methods"] == 1.0
    model = {"B": {"_kind": 0.0, "const": 0.0, "funcs": 1.0, "value_methods": 0.5}}
    weights = costmodel.unit_backend_seconds(scan.units, model)
    by_name = {u.name: w for u, w in zip(scan.units, weights)}
    assert by_name == {"V": 1.5, "P": 1.0, "F": 1.0}


def test_logs_gzip_and_goroot_relocation(tmp_path: Path) -> None:
    import gzip
    real = toolchain.goroot() / "src" / "container" / "list" / "list.go"
    moved = "/elsewhere/.venv/lib/python3.11/site-packages/go/src/container/list/list.go"
    rec = {"pkg": "container/list", "files": [moved], "wall": 0.05, "cpu": 0.05,
           "phases": {"fe:parse": 0.01, "be:compilefuncs": 0.02, "be:dumpobj": 0.001,
                      "total": 0.031}}
    log = tmp_path / "log.jsonl.gz"
    with gzip.open(log, "wt") as f:
        f.write(json.dumps(rec) + "\n")
    assert costmodel._relocate(moved) == str(real)
    (s,) = costmodel.samples_from_logs([log])
    assert s["pkg"] == "container/list" and s["features"]["funcs"] > 10
    assert s["B"] == pytest.approx(0.02)


def test_reference_scale_is_a_geometric_mean() -> None:
    model = {t: {"_kind": 0.0, "const": 0.0, "funcs": 1.0} for t in "FBD"}
    samples = [{"pkg": "a", "features": {"funcs": 1.0}}, {"pkg": "b", "features": {"funcs": 4.0}},
               {"pkg": "c", "features": {"funcs": 9.0}}]
    ref = {"a": (2.0, 1.0, 1.0), "b": (2.0, 4.0, 4.0)}  # F: x2 and x0.5
    sc = costmodel.reference_scale(samples, model, ref)
    assert sc["F"] == pytest.approx(1.0) and sc["B"] == pytest.approx(1.0)
    assert costmodel.reference_scale(samples, model, {}) == {"F": 1.0, "B": 1.0, "D": 1.0}


def test_per_function_cost_is_identified() -> None:
    """The fit sees aws-sdk-go's services (thousands of small generated methods, about
    0.88 ms of backend each in the collected runs): the backend cost of such a function must
    not come out at a fraction of that, as it did when only std/etcd/gin were in the corpus."""
    data = json.loads(costmodel.FIT_FILE.read_text())
    b = data["model"]["B"]
    # an aws setter: 1 block; a String() value method: 1 block and a wrapper
    per_method = b["funcs"] + b["blocks"] + 0.5 * b.get("value_methods", 0.0)
    assert 3e-4 < per_method * data["scale"]["B"] < 2e-3
    rep = data["report"]
    assert rep["held_out_ge_60k_lines"]["n"] >= 5
    assert rep["held_out_ge_60k_lines"]["mape_total"] < 25
    assert rep["held_out_total_ge_1s"]["wape_total"] < 25


def test_giant_generated_package_within_25_percent() -> None:
    """service/ec2 (178k lines): stock -c=1 one at a time on 2 cores, F + B + D 11.2 s here
    (fgo/planner/costmodel.py REFERENCE, from experiments/results/aws_*.json); the model
    shipped before this test predicted 6.9 s."""
    require_gopath("github.com/aws/aws-sdk-go/service/ec2", "golang-github-aws-aws-sdk-go-dev")
    scan = scan_files(sorted(p for p in AWS_EC2.glob("*.go") if not p.name.endswith("_test.go")))
    c = costmodel.predict(scan)
    measured = sum(costmodel.REFERENCE[f"github.com/aws/aws-sdk-go/service/ec2"])
    assert abs(c.total / measured - 1) < 0.25
    assert c.B > 3 * c.F  # the backend is what a split (or -c) divides


def test_func_lines_counts_the_functions_with_a_body(tmp_path: Path) -> None:
    from fgo.planner.gosource import func_lines
    # (a line opening a body: the scan's count of functions, for a decision it cannot change)
    src = tmp_path / "a.go"
    src.write_text("package a\n\nfunc A() {\n}\n\nfunc (t *T) B(x int) int {\n\treturn x\n}\n"
                   "\nfunc stub()\n\n// func C() {\nvar f = func() {\n}\n")
    assert func_lines([src]) == 2
