"""What fgo shows its operator: the trace file, the progress line, the summary."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from conftest import FGO, run_fgo


def test_trace_schema_spans_and_flows(hello: Path, tmp_path: Path) -> None:
    trace, report = tmp_path / "t.json", tmp_path / "r.json"
    proc = run_fgo("build", "-q", "--trace", str(trace), "--report", str(report), str(hello),
                   "--", "-a", "-o", str(tmp_path / "bin"))
    assert proc.returncode == 0, proc.stderr
    events = json.loads(trace.read_text())["traceEvents"]
    rep = json.loads(report.read_text())
    for e in events:  # Chrome Trace Event Format essentials
        assert e["ph"] in {"X", "M", "s", "f"} and isinstance(e["pid"], int)
        if e["ph"] == "X":
            assert {"name", "ts", "dur", "tid"} <= e.keys() and e["dur"] > 0
    spans = [e for e in events if e["ph"] == "X"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M"}
    assert "head node" in names and any(n.startswith("worker ") for n in names)
    # one span per compile that ran, in the right kind of lane
    remote = {a["package"] for a in rep["actions"] if a["mode"] == "remote"}
    traced = {e["name"].split(" ", 1)[1] for e in spans
              if e["cat"] == "build" and e["args"]["mode"] == "remote"}
    assert traced == remote
    assert any(e["cat"] == "link" for e in spans)
    # spans in one lane never overlap
    lanes: dict[tuple[int, int], list[dict]] = {}
    for e in spans:
        lanes.setdefault((e["pid"], e["tid"]), []).append(e)
    for lane in lanes.values():
        lane.sort(key=lambda e: e["ts"])
        for a, b in zip(lane, lane[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + 1e-3
    # every flow starts and finishes once
    starts = {e["id"] for e in events if e["ph"] == "s"}
    assert starts and starts == {e["id"] for e in events if e["ph"] == "f"}


def test_progress_line_on_a_terminal(hello: Path, tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # child: fgo on a pseudo-terminal
        os.execv(FGO, [FGO, "build", str(hello), "--", "-a", "-o", str(tmp_path / "bin")])
    out = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out[-2000:]
    text = out.decode(errors="replace")
    assert "\r\x1b[K" in text and "compiled (" in text and "running" in text
    assert "remote," in text.splitlines()[-1] or "remote" in text  # the summary line


def test_no_progress_when_not_a_terminal(hello: Path, tmp_path: Path) -> None:
    proc = subprocess.run([FGO, "build", str(hello), "--", "-o", str(tmp_path / "bin")],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert "\r" not in proc.stderr and "\x1b[K" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("fgo: ")


def test_plan_json_matches_the_real_actiongraph(hello: Path, tmp_path: Path) -> None:
    from fgo import toolchain
    ag = tmp_path / "ag.json"
    built = subprocess.run([str(toolchain.go_binary()), "build", "-a", f"-debug-actiongraph={ag}",
                            "-o", str(tmp_path / "bin"), "."], cwd=hello, env=toolchain.go_env(),
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    graph = json.loads(ag.read_text())
    compiled = {n["Package"] for n in graph if n["Mode"] in ("build", "built-in package")}
    links = [n for n in graph if n["Mode"] == "link"]
    proc = run_fgo("plan", "--json", "--dot", str(tmp_path / "g.dot"), str(hello), "--",
                   "-o", str(tmp_path / "bin"))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert {p["package"] for p in plan["packages"]} == compiled
    assert plan["actions"] == {"compile": len(compiled), "link": len(links)}
    # the critical path is a chain of imports, from a leaf to the main package
    imports = {n["Package"]: {graph[d]["Package"] for d in n["Deps"]}
               for n in graph if n["Mode"] == "build"}
    path = plan["critical_path"]["packages"]
    assert path[-1] == "example.com/hello" and len(path) > 3
    for earlier, later in zip(path, path[1:]):
        assert earlier in imports[later]
    assert sum(plan["width_by_level"]) == len(compiled) and plan["depth"] == len(plan["width_by_level"])
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    # after an fgo build of the same target, its measured durations replace the model's
    assert run_fgo("build", "-q", str(hello), "--", "-a", "-o", str(tmp_path / "bin")).returncode == 0
    again = json.loads(run_fgo("plan", "--json", str(hello), "--", "-a", "-o",
                               str(tmp_path / "bin")).stdout)
    assert again["costs_from"] == "last build"
    assert any("measured_s" in p for p in again["packages"])
