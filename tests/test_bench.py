"""fgo.analysis.bench: the compiler's -bench phase timings (pure, on strings)."""

from __future__ import annotations

import pytest

from fgo.analysis import bench

RUN = """\
commit: go1.27.3
goos: linux
goarch: amd64
BenchmarkCompile:example.com/p:fe:init              1        1000000 ns/op   1.00 %
BenchmarkCompile:example.com/p:fe:parse             1        2000000 ns/op   2.00 %    120 lines    60000 lines/s
BenchmarkCompile:example.com/p:fe:subtotal          1        3000000 ns/op   3.00 %
BenchmarkCompile:example.com/p:be:compilefuncs      1       80000000 ns/op  80.00 %    1200 funcs    15000 funcs/s
BenchmarkCompile:example.com/p:be:dumpobj           1       10000000 ns/op  10.00 %
BenchmarkCompile:example.com/p:be:subtotal          1       90000000 ns/op  90.00 %
BenchmarkCompile:example.com/p:unaccounted          1        7000000 ns/op   7.00 %
BenchmarkCompile:example.com/p:total                1      100000000 ns/op 100.00 %
"""


def test_parse_one_run() -> None:
    (run,) = bench.parse(RUN)
    assert run.package == "example.com/p"
    assert run.phases["fe:parse"] == pytest.approx(0.002)
    assert run.phases["be:subtotal"] == pytest.approx(0.09) and run.phases["total"] == pytest.approx(0.1)
    assert bench.fbd(run.phases) == pytest.approx((0.003, 0.08, 0.01))


def test_runs_are_split_at_headers_fe_init_and_package() -> None:
    second = RUN.replace("80000000", "50000000")
    other = RUN.replace("example.com/p", "example.com/q").split("\n", 3)[3]  # no header
    runs = bench.parse("noise\n" + RUN + second + other)
    assert [r.package for r in runs] == ["example.com/p", "example.com/p", "example.com/q"]
    assert bench.last_run(RUN + second)["be:compilefuncs"] == pytest.approx(0.05)
    by = bench.by_package(RUN + second + other)
    assert set(by) == {"example.com/p", "example.com/q"}
    assert by["example.com/p"]["be:compilefuncs"] == pytest.approx(0.05)
    # without headers, fe:init starts a new run of the same package
    headless = RUN.split("\n", 3)[3]
    assert len(bench.parse(headless + headless)) == 2


def test_empty_and_garbage() -> None:
    assert bench.parse("") == [] and bench.last_run("x\ny") == {} and bench.summaries("") == {}
    assert bench.fbd({}) == (0.0, 0.0, 0.0)


def test_summary() -> None:
    s = bench.summary(bench.last_run(RUN))
    assert "fe:subtotal" not in s and "be:subtotal" not in s
    assert (s["frontend"], s["backend"], s["dumpobj"]) == pytest.approx((0.003, 0.08, 0.01))
    assert s["total"] == pytest.approx(0.1) and s["unaccounted"] == pytest.approx(0.007)
    no_total = bench.summary({"fe:init": 1.0, "be:compilefuncs": 2.0, "be:dumpobj": 0.5})
    assert no_total["total"] == 3.5
