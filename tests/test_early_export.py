"""Early export data (`compile -fgoexport`, patch 0013): the file written before the backend
is the final archive's `__.PKGDEF` member, byte for byte, and the flag leaves the archive
as the stock compiler writes it. Real compiles of hello, a few std packages and a test
package that exports every kind of symbol whose linker index the export data records.

The whole corpus (std, cmd, etcd, gin) is experiment 7 (experiments/test_7_pipelining.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fgo import goarchive
from fgo.compiler import flags as cpflags, patched as cp
from fgo.compiler import early_export as ee
from fgo.toolchain import go_env
from conftest import write_tree

HELLO = Path(__file__).parent / "data" / "hello"


def member(name: str, body: bytes) -> bytes:
    hdr = f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{len(body):<10}`\n".encode()
    return hdr + body + (b"\n" if len(body) & 1 else b"")


def test_compare_identical_prefix() -> None:
    pkgdef = goarchive.MAGIC + member("__.PKGDEF", b"go object\n\n$$B\nu123\n$$\n")
    final = pkgdef + member("_go_.o", b"code")
    v = ee.compare(pkgdef, final)
    assert v.identical and v.first_diff is None and v.final_size == len(pkgdef)


def test_compare_reports_where_it_differs() -> None:
    early = goarchive.MAGIC + member("__.PKGDEF", b"go object\n\n$$B\nu124\n$$\n")
    final = goarchive.MAGIC + member("__.PKGDEF", b"go object\n\n$$B\nu123\n$$\n") + member("_go_.o", b"x")
    v = ee.compare(early, final)
    assert not v.identical and v.why == "contents differ"
    assert early[:v.first_diff] == final[:v.first_diff] and early[v.first_diff] != final[v.first_diff]
    shorter = ee.compare(early[:-4], final)
    assert not shorter.identical and shorter.why == "sizes differ"


def test_compare_needs_pkgdef_first() -> None:
    v = ee.compare(b"", goarchive.MAGIC + member("_go_.o", b"x"))
    assert not v.identical and "__.PKGDEF" in v.why


def test_flags() -> None:
    assert cpflags.early_export("/tmp/x.a") == ["-fgoexport=/tmp/x.a"]


# Exported functions, methods, variables (initialised statically and dynamically), types,
# generics, closures, method values: every kind of symbol the export data may refer to by
# its linker index.
EXPORTS = {
    "go.mod": "module example.com/exports\n\ngo 1.27\n",
    "e/e.go": '''package e

import (
	"errors"
	"fmt"
	"strings"
)

var ErrX = errors.New("x")
var Table = map[string]int{"a": 1}
var Count = 3
var Hook = func(s string) string { return strings.ToUpper(s) }

type T struct{ A, B int }

func (t *T) String() string { return fmt.Sprint(t.A, t.B) }
func (t T) Sum() int         { return t.A + t.B }

type I interface{ Sum() int }

func New(a, b int) *T { return &T{a, b} }

func Map[E, R any](s []E, f func(E) R) []R {
	var r []R
	for _, e := range s {
		r = append(r, f(e))
	}
	return r
}

func Names(ts []*T) []string { return Map(ts, (*T).String) }

func Adder(n int) func(int) int { return func(x int) int { return x + n + Count } }

func Small(x int) int { return x*2 + len(ErrX.Error()) }
''',
    "u/u.go": '''package u

import "example.com/exports/e"

func Use() int { return e.Small(e.New(1, 2).Sum()) + e.Adder(1)(2) + len(e.Names(nil)) }
''',
}


@pytest.mark.slow
def test_early_export_is_final_and_the_archive_stock(tmp_path: Path) -> None:
    cp.ensure_compiler()
    proj = write_tree(tmp_path / "exports", EXPORTS)
    write_tree(proj, {"main.go": 'package main\n\nimport (\n\t"fmt"\n\t"net/url"\n\t"container/list"\n'
                                 '\t"example.com/exports/u"\n)\n\nfunc main() { fmt.Println(u.Use(), '
                                 'list.New().Len(), url.PathEscape("a b")) }\n'})
    recs = ee.check_build(["."], tmp_path / "log.jsonl", tmp_path / "cache", env=go_env(), cwd=proj,
                          stock=True)
    by_pkg = {r["pkg"]: r for r in recs}
    assert {"example.com/exports/e", "example.com/exports/u", "main", "fmt", "net/url",
            "container/list", "runtime", "reflect"} <= set(by_pkg)
    bad = {p: r.get("why") for p, r in by_pkg.items() if not r.get("identical")}
    assert bad == {}
    assert [p for p, r in by_pkg.items() if not r.get("stock_identical")] == []
    assert all(r["rc"] == 0 and 0 <= r["export_ready_frac"] <= 1 for r in recs)


@pytest.mark.slow
def test_hello(tmp_path: Path) -> None:
    recs = ee.check_build(["."], tmp_path / "log.jsonl", tmp_path / "cache", env=go_env(), cwd=HELLO,
                          stock=True)
    assert {"example.com/hello/greet", "main"} <= {r["pkg"] for r in recs}
    assert all(r.get("identical") and r.get("stock_identical") for r in recs), \
        [(r["pkg"], r.get("why")) for r in recs if not (r.get("identical") and r.get("stock_identical"))]


@pytest.mark.slow
def test_a_shard_writes_no_export_data_its_leader_does(tmp_path: Path) -> None:
    """In a split compile the export data comes from the leader, and is its archive's."""
    import subprocess

    from fgo.compiler import harness

    patched = cp.ensure_compiler().path
    harness._go(["build", "strconv"], HELLO)
    argv, cwd = harness.compile_command(HELLO, "strconv", tmp_path / "work")
    res, early = tmp_path / "shard1.res", tmp_path / "early.a"
    shard = cpflags.with_flags(harness._set_output([argv[0], "-c=1", *argv[1:]], tmp_path / "unused.a"),
                          [*cpflags.shard_flags(1, 2, res), *cpflags.early_export(tmp_path / "shard-early.a")], compiler=patched)
    subprocess.run(shard, cwd=cwd, check=True, capture_output=True)
    assert res.exists() and not (tmp_path / "shard-early.a").exists()
    leader = cpflags.with_flags(harness._set_output([argv[0], "-c=1", *argv[1:]], tmp_path / "leader.a"),
                           [*cpflags.leader_flags(2, [res], timeout=60), *cpflags.early_export(early)], compiler=patched)
    subprocess.run(leader, cwd=cwd, check=True, capture_output=True)
    stock = harness._set_output([argv[0], "-c=1", *argv[1:]], tmp_path / "stock.a")
    subprocess.run(stock, cwd=cwd, check=True, capture_output=True)
    final = (tmp_path / "leader.a").read_bytes()
    assert final == (tmp_path / "stock.a").read_bytes()
    assert ee.compare(early.read_bytes(), final).identical
