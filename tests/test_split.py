"""--split-large end to end: real clusters, the patched compiler, byte-identical binaries."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from fgo import toolchain
from conftest import (GOPATH_ENV, go_build, oracle_build, require_gopath, run_fgo, sha,
                      write_tree)
from test_build import fgo_build


def large_package(n: int = 1500) -> dict[str, str]:
    """A module whose package `big` has thousands of functions of every kind the merge must
    handle: methods, generics and their instantiations, closures, init, initialized vars,
    //go:embed, a switch that becomes a jump table, defer."""
    parts = ['package big\n\nimport (\n\t_ "embed"\n\t"fmt"\n\t"sort"\n\t"strings"\n)\n\n',
             "//go:embed data.txt\nvar data string\n\n",
             "var table = map[string]int{" + ", ".join(f'"k{i}": {i}' for i in range(50)) + "}\n\n",
             "type Num interface{ ~int | ~int64 | ~float64 }\n\n",
             "func Sum[T Num](xs []T) (s T) {\n\tfor _, x := range xs {\n\t\ts += x\n\t}\n\treturn\n}\n\n",
             "type Box[T any] struct{ v T }\n\nfunc (b *Box[T]) Get() T { return b.v }\n\n",
             "var inits []string\n\nfunc init() { inits = append(inits, strings.TrimSpace(data)) }\n\n"]
    for i in range(n):
        kind = i % 5
        if kind == 0:
            parts.append(f"type T{i} struct{{ a, b int; s string }}\n\n"
                         f"func (t *T{i}) M(x int) int {{\n\tdefer func() {{ t.a++ }}()\n"
                         f"\tswitch x {{\n" + "".join(f"\tcase {c}:\n\t\treturn t.a + {c * i}\n"
                                                      for c in range(8)) +
                         "\t}\n\treturn t.b\n}\n\n")
        elif kind == 1:
            parts.append(f"func F{i}(xs []int) int {{\n\tf := func(y int) int {{ return y * {i} }}\n"
                         f"\ts := 0\n\tfor _, x := range xs {{\n\t\ts += f(x)\n\t}}\n"
                         f"\treturn s + Sum(xs)\n}}\n\n")
        elif kind == 2:
            parts.append(f"func G{i}(m map[string]int) []string {{\n\tkeys := make([]string, 0, len(m))\n"
                         f"\tfor k := range m {{\n\t\tkeys = append(keys, k+\"{i}\")\n\t}}\n"
                         f"\tsort.Strings(keys)\n\treturn keys\n}}\n\n")
        elif kind == 3:
            parts.append(f"func H{i}(v float64) string {{\n\tb := &Box[float64]{{v: v}}\n"
                         f"\treturn fmt.Sprintf(\"%v-{i}\", Sum([]float64{{b.Get(), {i}}}))\n}}\n\n")
        else:
            parts.append(f"var V{i} = K{i}()\n\nfunc K{i}() int {{ return table[\"k{i % 50}\"] + {i} }}\n\n")
    parts.append("func Use() int {\n\ts := len(inits) + V4\n"
                 + "".join(f"\ts += F{i}([]int{{1, 2}})\n" for i in range(1, n, 50))
                 + "\treturn s\n}\n")
    main = ('package main\n\nimport (\n\t"fmt"\n\t"example.com/large/big"\n)\n\n'
            'func main() { fmt.Println(big.Use()) }\n')
    return {"go.mod": "module example.com/large\n\ngo 1.22\n", "big/big.go": "".join(parts),
            "big/data.txt": "embedded\n", "main.go": main}


@pytest.fixture
def large(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "large", large_package())


def split_actions(rep: dict) -> list[dict]:
    return [a for a in rep["actions"] if a.get("split") and a["split"].get("k", 1) >= 2]


@pytest.mark.parametrize("shards, slots", [(2, "0"), (3, "0"), (3, "1")],
                         ids=["K2-worker-leads", "K3-worker-leads", "K3-head-leads"])
def test_large_generated_package_split_identical(large: Path, real_cluster, shards: int,
                                                 slots: str) -> None:
    """Split on a real cluster, the leader on a worker (no local slots) or on the head's
    free slot (its shards on both workers, their results fetched by the head)."""
    _, rep = fgo_build(large, "-o", str(large / "fgo.bin"),
                       opts=("--scheduler", real_cluster.address, "--split-large=0",
                             "--shards", str(shards), "--local-slots", slots))
    assert oracle_build(large, "-o", str(large / "go.bin")).returncode == 0
    assert sha(large / "fgo.bin") == sha(large / "go.bin")
    big = [a for a in rep["actions"] if a["package"] == "example.com/large/big"][0]
    assert big["mode"] == "split", big
    assert big["split"]["k"] == shards and len(big["split"]["shards"]) == shards - 1
    # forced, its K given: no scan on the head (the compiler deals the functions)
    assert big["split"]["scanned"] is False and "predicted_whole_s" not in big["split"]
    assert big["split"]["leader"]["merge_s"] is not None
    workers = big["split"]["workers"]
    if slots == "0":
        assert big["split"]["leader"]["on"] != "head" and len(set(workers)) == 2
    else:  # the head leads; a shard on each worker, its result fetched by the head
        assert big["split"]["leader"]["on"] == "head" and big["worker"] == "head", big
        assert workers[0] == "head" and len(set(workers[1:])) == 2, workers
        assert sum(s["bytes"] for s in big["split"]["shards"].values()) \
            == big["split"]["shard_bytes"] == big["bytes_out"] > 0  # no archive came back
    assert rep["totals"]["split"] >= 1


def test_a_split_on_one_worker_of_one_thread_runs_its_shard_first(large: Path,
                                                                  tmp_path: Path) -> None:
    """A forced split of two where the head knows a single 1-thread worker: leader and
    shard on it. Sent together, the leader could take the thread while the shard queued
    behind it, and wait for it for ever (a pipelined test's build hung so while its
    second worker was still connecting); the head sends the leader once the shard ended."""
    from conftest import RealCluster
    cluster = RealCluster(tmp_path / "c", workers=1)
    try:
        _, rep = fgo_build(large, "-o", str(large / "fgo.bin"),
                           opts=("--scheduler", cluster.address, "--split-large=0",
                                 "--shards", "2", "--local-slots", "0"))
    finally:
        cluster.close()
    assert oracle_build(large, "-o", str(large / "go.bin")).returncode == 0
    assert sha(large / "fgo.bin") == sha(large / "go.bin")
    big = next(a for a in rep["actions"] if a["package"] == "example.com/large/big")
    assert big["mode"] == "split", big
    workers = big["split"]["workers"]
    assert len(workers) == 2 and workers[0] == workers[1] != "head", workers


def test_split_rebuild_starts_go_build_while_connecting(large: Path, real_cluster) -> None:
    """A split build on a scheduler a build has used before starts go build at once, sized
    as that build found the cluster; the split's decision waits for the connect. An edit
    to the giant package: split again, led by the head, the binary the oracle's."""
    opts = ("--scheduler", real_cluster.address, "--split-large=0", "--shards", "2",
            "--local-slots", "1")
    fgo_build(large, "-o", str(large / "fgo.bin"), opts=opts)  # (another test's cluster
    # may have had this address before: whether this one connected first is not asked)
    with open(large / "big" / "big.go", "a") as f:
        f.write("\nfunc Edited() int { return 42 }\n")
    _, again = fgo_build(large, "-o", str(large / "fgo.bin"), opts=opts)
    assert again["cluster"]["connected_beside_go"] and again["cluster"]["workers"] == 2
    big = next(a for a in again["actions"] if a["package"] == "example.com/large/big")
    assert big["mode"] == "split" and big["split"]["leader"]["on"] == "head", big
    assert oracle_build(large, "-o", str(large / "go.bin")).returncode == 0
    assert sha(large / "fgo.bin") == sha(large / "go.bin")
    # the scheduler gone: one line and a non-zero exit, or with --fallback-local the
    # package compiled whole on the head, the oracle's binary
    real_cluster.close()
    with open(large / "big" / "big.go", "a") as f:
        f.write("\nfunc EditedAgain() int { return 43 }\n")
    started = time.monotonic()
    gone = run_fgo("build", *opts, str(large), "--", "-o", str(large / "fgo.bin"),
                   timeout=120)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr, gone.stderr
    assert [line for line in gone.stderr.splitlines() if "cannot reach" in line], gone.stderr
    assert time.monotonic() - started < 60
    _, local = fgo_build(large, "-o", str(large / "fgo.bin"), opts=("--fallback-local", *opts))
    assert local["totals"]["split"] == local["totals"]["remote"] == 0, local["totals"]
    assert oracle_build(large, "-o", str(large / "go.bin")).returncode == 0
    assert sha(large / "fgo.bin") == sha(large / "go.bin")


def test_split_check_against_stock(large: Path) -> None:
    _, rep = fgo_build(large, "-o", str(large / "fgo.bin"),
                       opts=("--split-large=0", "--shards", "2", "--check"))
    big = [a for a in rep["actions"] if a["package"] == "example.com/large/big"][0]
    assert big["mode"] == "split" and big["split"]["check"]["ok"], big["split"]
    assert all(c["ok"] for c in rep["checks"])


@pytest.mark.slow
def test_gin_split_every_package_identical(tmp_path: Path) -> None:
    require_gopath("github.com/gin-gonic/gin", "golang-github-gin-gonic-gin-dev")
    app = write_tree(tmp_path / "ginapp", {"main.go": (
        'package main\n\nimport "github.com/gin-gonic/gin"\n\n'
        'func main() { r := gin.Default(); _ = r }\n')})
    # A GOCACHE of its own holding the standard library only: gin and its ~60 dependencies
    # are what gets split (and compiled stock by --check), in minutes rather than -a's ten.
    env = {**GOPATH_ENV, "GOCACHE": str(tmp_path / "gocache")}
    std = subprocess.run([str(toolchain.go_binary()), "list", "-deps", "-f",
                          "{{if .Standard}}{{.ImportPath}}{{end}}", "."], cwd=app,
                         env=toolchain.go_env(env), capture_output=True, text=True, check=True)
    warm = go_build(app, *[p for p in std.stdout.split() if p != "unsafe"],
                    env={**os.environ, **env})
    assert warm.returncode == 0, warm.stderr
    _, rep = fgo_build(app, "-o", str(app / "fgo.bin"), env=env,
                       opts=("--split-large=0", "--shards", "2", "--check"))
    plain = oracle_build(app, "-o", str(app / "go.bin"), env={**os.environ, **env})
    assert plain.returncode == 0
    assert sha(app / "fgo.bin") == sha(app / "go.bin")
    splits = split_actions(rep)
    assert len(splits) > 20
    not_split = [a["package"] for a in splits if a["mode"] != "split"]
    assert not not_split, [a["split"].get("fallback") for a in splits if a["mode"] != "split"]
    assert all(c["ok"] for c in rep["checks"])
