"""fgo.verify.goobj (the object-file reader) and fgo diff: the diagnosis must be real.

Real archives built with the pinned toolchain; injected differences (one function
body changed, one byte flipped in a symbol's data) must be pinned to the right
symbol in Go's spelling.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import FGO

from fgo.verify import diff as fdiff
from fgo import toolchain
from fgo.verify import goobj
PKG_SRC = """package p

// Options is configured by init.
type Options struct {
	n    int
	name string
}

var Registry = map[string]int{"a": 1, "b": 2}

var table = [4]uint32{0x11111111, 0x22222222, 0x33333333, 0x44444444}

//go:noinline
func (o *Options) init() int { return o.n + 1 }

//go:noinline
func Other(x int) int {
	s := 0
	for i := 0; i < x; i++ {
		s += i * 3
	}
	return s + int(table[x&3])
}

func New(name string) *Options {
	o := &Options{name: name}
	o.n = o.init()
	return o
}

//go:noinline
func helperA() int { return 1 }

//go:noinline
func helperB() int { return 2 }

//go:noinline
func Call() int { return helperA() }
"""

MAIN_SRC = """package main

var v = "xxxxxxxxxxxxxxxx"

func main() { println("tiny", v) }
"""


def go(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    proc = toolchain.run_go(args, cwd=cwd, env=toolchain.go_env(**extra), check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def make_pkg(root: Path, src: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text("module example.com/p\n\ngo 1.27\n")
    (root / "p.go").write_text(src)
    return root


def build_archive(src_dir: Path, out: Path, *flags: str) -> Path:
    go(["build", *flags, "-o", str(out), "."], src_dir)
    return out


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """p1: the package; p2: the same with one function body changed (same lines);
    p1c4: p1 compiled with -c=4 (different action ID, same code)."""
    root = tmp_path_factory.mktemp("archives")
    p1 = make_pkg(root / "p1", PKG_SRC)
    p2 = make_pkg(root / "p2", PKG_SRC.replace("return o.n + 1", "return o.n + 7"))
    return {
        "p1": build_archive(p1, root / "p1.a", "-trimpath"),
        "p1again": build_archive(p1, root / "p1again.a", "-trimpath"),
        "p2": build_archive(p2, root / "p2.a", "-trimpath"),
        "p1c4": build_archive(p1, root / "p1c4.a", "-trimpath", "-gcflags=-c=4"),
        "p3": build_archive(make_pkg(root / "p3", PKG_SRC.replace("return helperA()", "return helperB()")),
                            root / "p3.a", "-trimpath"),
        "cpu": _std_archive(p1, root / "cpu.a", "internal/cpu"),  # Go + assembly objects
    }


def _std_archive(cwd: Path, out: Path, pkg: str) -> Path:
    go(["build", "-trimpath", "-o", str(out), pkg], cwd)  # -trimpath: shares the session cache
    return out


def fgo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FGO, *args], check=False, capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ the reader


def _nm(path: Path) -> Counter:
    """`go tool nm -size` of an archive: (name, size, code) of defined symbols."""
    out = toolchain.run_go(["tool", "nm", "-size", str(path)]).stdout
    c: Counter = Counter()
    for line in out.splitlines():
        m = re.match(r"^\s*(?:\S+:)?\s*([0-9a-f]+)\s+(\d+)\s+(\S) (.*)$", line)
        if m and m.group(3) != "U":
            c[(m.group(4), int(m.group(2)), m.group(3))] += 1
    return c


CODES = {"STEXT": "T", "SRODATA": "R", "SNOPTRDATA": "D", "SDATA": "D", "SBSS": "B",
         "SNOPTRBSS": "B", "STLSBSS": "B"}


def _mine(path: Path) -> Counter:
    c: Counter = Counter()
    for o in goobj.read_package_archive(path).objects.values():
        for s in o.symbols:
            if s.raw_name:
                code = CODES.get(s.kind_name, "?")
                static = s.abi == goobj.SYM_ABI_STATIC
                c[(s.raw_name + ("<1>" if static else ""), s.size,
                   code.lower() if static else code)] += 1
    return c


def test_reader_agrees_with_go_tool_nm(archives):
    """Every defined symbol, its size and kind, as the toolchain's own nm sees them
    (p: a Go package; internal/cpu: Go plus assembly objects)."""
    for name in ("p1", "cpu"):
        mine, nm = _mine(archives[name]), _nm(archives[name])
        assert nm and mine == nm, (name, (nm - mine).most_common(3), (mine - nm).most_common(3))
    cpu = goobj.read_package_archive(archives["cpu"])
    assert len(cpu.objects) > 1 and cpu.pkgpath == "internal/cpu"  # asm objects too


def test_reader_structure(archives):
    a = goobj.read_package_archive(archives["p1"])
    assert [m.name for m in a.members] == ["__.PKGDEF", "_go_.o"]
    assert a.pkgpath == "example.com/p" and "/" in a.build_id
    o = a.objects["_go_.o"]
    assert o.arch and o.text_header.startswith("go object ")
    assert "example.com/p/p.go" in o.files and not any(f.startswith("/") for f in o.files)
    syms = {s.name: s for s in o.symbols}
    init = syms["example.com/p.(*Options).init"]
    assert init.kind_name == "STEXT" and init.size == len(init.data) > 0
    aux = {x.type_name for x in init.auxs}
    assert {"funcinfo", "pcsp", "pcline", "dwarfinfo"} <= aux
    # nameless aux symbols are named after their function
    assert "example.com/p.(*Options).init <pcline>" in syms
    assert syms["example.com/p.(*Options).init <dwarfinfo>"].is_dwarf
    new = syms["example.com/p.New"]
    assert any(r.target == "example.com/p.(*Options).init" and r.type_name == "R_CALL"
               for r in new.relocs)
    assert syms["example.com/p.table"].data == bytes.fromhex("11111111222222223333333344444444")
    assert fdiff.source_line(o, init, 0) == "p.go:14"


# ------------------------------------------------------------------ archive diffs


def test_changed_function_body_is_named(archives):
    d = fdiff.compare_archives(str(archives["p1"]), str(archives["p2"]))
    assert not d.matched and not d.identical
    assert d.pkgpath == "example.com/p"
    assert d.functions == ["example.com/p.(*Options).init"]
    (obj,) = d.objects
    assert obj.member == "_go_.o" and obj.data_symbols == []
    code = [s for s in obj.symbols if s.role == "code"]
    assert [s.name for s in code] == ["example.com/p.(*Options).init"]
    assert code[0].kind == "STEXT" and "data" in code[0].differs and code[0].first_diff is not None
    assert code[0].line_a == "p.go:14"
    assert all(s.function == "example.com/p.(*Options).init" for s in obj.symbols)
    # the CLI says the same, exit 1, and JSON carries it
    r = fgo("diff", "--json", str(archives["p1"]), str(archives["p2"]))
    assert r.returncode == 1, r.stderr
    j = json.loads(r.stdout)
    assert j["matched"] is False and j["archive"]["functions"] == ["example.com/p.(*Options).init"]
    r = fgo("diff", str(archives["p1"]), str(archives["p2"]))
    assert r.returncode == 1 and "example.com/p.(*Options).init STEXT" in r.stdout


def test_relocation_difference_is_shown(archives):
    """Call() calls helperB instead of helperA: same bytes, other relocation target."""
    d = fdiff.compare_archives(str(archives["p1"]), str(archives["p3"]))
    assert d.functions == ["example.com/p.Call"]
    (code,) = [s for s in d.objects[0].symbols if s.role == "code"]
    assert code.name == "example.com/p.Call" and "relocs" in code.differs
    assert any(r.startswith("- ") and r.endswith("R_CALL/4 example.com/p.helperA") for r in code.relocs)
    assert any(r.startswith("+ ") and r.endswith("R_CALL/4 example.com/p.helperB") for r in code.relocs)


def _flip(src: Path, dst: Path, symbol: str, offset: int) -> Path:
    data = bytearray(src.read_bytes())
    a = goobj.read_package_archive(src, bytes(data))
    member = next(m for m in a.members if m.name == "_go_.o")
    sym = next(s for s in a.objects["_go_.o"].symbols if s.name == symbol)
    assert offset < len(sym.data)
    data[member.offset + sym.data_off + offset] ^= 0x5A
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("symbol,offset,function", [
    ("example.com/p.Other", 9, "example.com/p.Other"),  # code
    ("example.com/p.table", 6, ""),  # plain data
    ("example.com/p.New <dwarfinfo>", 3, "example.com/p.New"),  # DWARF of a function
])
def test_flipped_byte_is_pinned_to_its_symbol(archives, tmp_path, symbol, offset, function):
    flipped = _flip(archives["p1"], tmp_path / "flip.a", symbol, offset)
    d = fdiff.compare_archives(str(archives["p1"]), str(flipped))
    assert not d.matched and d.pkgdef == "" and not d.build_id_differs
    (obj,) = d.objects
    (s,) = obj.symbols
    assert s.name == symbol and s.status == "changed" and s.differs == ["data"]
    assert s.first_diff == offset and s.size_a == s.size_b
    assert s.function == function
    if function:
        assert obj.functions == [function]
    else:
        assert obj.data_symbols == [symbol] and obj.functions == []
    r = fgo("diff", str(archives["p1"]), str(flipped))
    assert r.returncode == 1 and symbol in r.stdout and f"+{offset:#x}" in r.stdout


def test_identical_and_build_id_only(archives):
    assert archives["p1"].read_bytes() == archives["p1again"].read_bytes()
    r = fgo("diff", str(archives["p1"]), str(archives["p1again"]))
    assert r.returncode == 0 and "identical" in r.stdout
    # -c=4: other action ID (flags are hashed), same code
    d = fdiff.compare_archives(str(archives["p1"]), str(archives["p1c4"]))
    assert not d.identical and not d.matched and d.build_id_differs
    assert d.objects == [] and d.pkgdef == "build-id-only" and d.build_id_members == ["_go_.o"]
    assert "only the build ID differs" in d.summary
    assert fgo("diff", str(archives["p1"]), str(archives["p1c4"])).returncode == 1
    assert fgo("diff", "--ignore-buildid", str(archives["p1"]), str(archives["p1c4"])).returncode == 0


def test_symbol_order_only_is_a_layout_finding(archives):
    """Same symbols, same contents, other order: what map-order nondeterminism looks like."""
    a = goobj.read_package_archive(archives["p1"]).objects["_go_.o"]
    b = goobj.read_package_archive(archives["p1"]).objects["_go_.o"]
    i, j = 0, 1
    b.symbols[i], b.symbols[j] = b.symbols[j], b.symbols[i]
    d = fdiff.compare_objects(a, b, "_go_.o", b"x", b"y")
    assert d.symbols == [] and d.layout and "different order" in d.layout[0]


def test_bad_input_is_one_line_exit_2(archives, tmp_path):
    (tmp_path / "text").write_text("hello\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "trunc.a").write_bytes(archives["p1"].read_bytes()[:3000])
    data = bytearray(archives["p1"].read_bytes())
    i = data.find(goobj.MAGIC)
    data[i + 20:i + 24] = b"\xff\xff\xff\x7f"  # a block offset past the end
    (tmp_path / "corrupt.a").write_bytes(bytes(data))
    exe = shutil.which("true") or "/bin/true"
    cases = [
        (str(tmp_path / "missing.a"), str(archives["p1"])),
        (str(tmp_path), str(archives["p1"])),
        (str(tmp_path / "text"), str(archives["p1"])),
        (str(tmp_path / "empty"), str(tmp_path / "empty")),
        (str(tmp_path / "trunc.a"), str(archives["p1"])),
        (str(tmp_path / "corrupt.a"), str(archives["p1"])),
        (str(archives["p1"]), exe),
    ]
    for a, b in cases:
        r = fgo("diff", a, b)
        assert r.returncode == 2, (a, b, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fgo diff: "), r.stderr
        assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ binaries


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny program linked several ways from one cache (only the link differs)."""
    root = tmp_path_factory.mktemp("bins")
    src = root / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/tiny\n\ngo 1.27\n")
    (src / "main.go").write_text(MAIN_SRC)
    out = {}

    def link(name: str, *flags: str) -> None:
        go(["build", "-trimpath", *flags, "-o", str(root / name), "."], src)
        out[name] = root / name

    link("plain")
    link("plain2")
    link("xa", "-ldflags=-X=main.v=aaaaaaaaaaaaaaaa")
    link("xb", "-ldflags=-X=main.v=bbbbbbbbbbbbbbbb")
    if shutil.which("gcc"):
        flags = "-ldflags=-linkmode=external -extldflags=-Wl,--build-id=uuid"
        link("uuid1", flags)
        link("uuid2", flags)
    return out


def test_reader_elf(binaries):
    e = goobj.read_elf(binaries["plain"])
    assert e.go_build_id.count("/") == 3 and not e.host_linked
    assert e.section(".text") is not None and e.symbols
    assert e.buildinfo and e.buildinfo.main_path == "example.com/tiny"
    assert e.buildinfo.settings.get("-trimpath") == "true"
    text = e.section(".text")
    main = next(s for s in e.symbols if s.name == "main.main")
    assert e.symbol_at(text, main.value + 1).name == "main.main"


def test_same_build_twice_is_identical(binaries):
    r = fgo("diff", str(binaries["plain"]), str(binaries["plain2"]))
    assert r.returncode == 0, r.stdout


def test_binary_difference_is_pinned_and_explained(binaries):
    d = fdiff.compare_binaries(str(binaries["xa"]), str(binaries["xb"]))
    assert not d.matched and d.symbols == ["main.v.str"]
    rodata = next(s for s in d.sections if s.name == ".rodata")
    assert rodata.symbols == ["main.v.str"] and rodata.differing_bytes == 16
    assert "aaaaaaaaaaaaaaaa" in rodata.context_a and "bbbbbbbbbbbbbbbb" in rodata.context_b


@pytest.mark.skipif(not shutil.which("gcc"), reason="no host C linker")
def test_host_linker_random_build_id_points_at_the_link(binaries):
    """The Samsara case: identical archives, host linker embeds a random build ID."""
    a, b = binaries["uuid1"], binaries["uuid2"]
    assert a.read_bytes() != b.read_bytes()
    d = fdiff.compare_binaries(str(a), str(b))
    assert d.host_linked_a and d.host_linked_b and d.gnu_build_id_a != d.gnu_build_id_b
    assert {s.name for s in d.sections} == {".note.gnu.build-id"}
    assert "-ldflags=-linkmode=internal" in d.flags
    r = fgo("diff", "--json", str(a), str(b))
    assert r.returncode == 1
    j = json.loads(r.stdout)
    assert "-ldflags=-linkmode=internal" in j["binary"]["flags"]


def test_go_tool_compile_outputs(tmp_path):
    """`go tool compile` archives and -linkobj link objects (no __.PKGDEF, no build id)."""
    for n, body in (("1", "x + 1"), ("2", "x + 2")):
        src = tmp_path / f"q{n}.go"
        src.write_text(f"package q\n\nfunc F(x int) int {{ return {body} }}\n\n"
                       "func G() int { return 7 }\n")
        toolchain.run_go(["tool", "compile", "-p", "example.com/q", "-trimpath", str(tmp_path),
                          "-linkobj", str(tmp_path / f"q{n}.lo"), "-o", str(tmp_path / f"q{n}.a"),
                          str(src)], cwd=tmp_path)
    d = fdiff.compare_archives(str(tmp_path / "q1.lo"), str(tmp_path / "q2.lo"))
    assert d.pkgdef == "absent" and d.functions == ["example.com/q.F"] and not d.matched
    # with -linkobj, -o gets only the export data; F is inlinable, so its body is in it
    d = fdiff.compare_archives(str(tmp_path / "q1.a"), str(tmp_path / "q2.a"))
    assert d.pkgdef == "differs" and d.objects == [] and not d.matched


@pytest.mark.skipif(not shutil.which("gcc"), reason="no C compiler for cgo")
def test_cgo_native_member_difference(binaries, tmp_path):
    """runtime/cgo carries gcc objects (_x001.o ...): a flipped byte names the C function
    (_x007.o: gcc_libinit.c, several functions)."""
    a = _std_archive(tmp_path, tmp_path / "cgo.a", "runtime/cgo")
    data = bytearray(a.read_bytes())
    member = next(m for m in goobj.read_ar(bytes(data)) if m.name == "_x007.o")
    elf = goobj.read_elf("_x007.o", member.data)
    text = elf.section(".text")
    func = next(s for s in elf.symbols if s.shndx == text.index and s.type == 2 and s.size > 4)
    data[member.offset + text.offset + func.value + 2] ^= 1
    (tmp_path / "flip.a").write_bytes(bytes(data))
    d = fdiff.compare_archives(str(a), str(tmp_path / "flip.a"))
    assert not d.matched and d.objects == [] and len(d.native) == 1
    assert d.native[0].startswith("_x007.o:") and f".text in {func.name}" in d.native[0]


def test_corrupted_inputs_raise_goobj_error_only(archives, tmp_path):
    """Random damage to an archive's object header/indexes: a GoobjError or a report,
    never another exception (the CLI turns GoobjError into one line, exit 2)."""
    import random
    base = archives["p1"].read_bytes()
    member = next(m for m in goobj.read_ar(base) if m.name == "_go_.o")
    start = member.offset + member.data.find(goobj.MAGIC)
    rng = random.Random(7)
    out = tmp_path / "bad.a"
    for _ in range(300):
        data = bytearray(base)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(start, start + 300)] = rng.randrange(256)
        out.write_bytes(bytes(data))
        try:
            fdiff.compare_files(str(archives["p1"]), str(out))
        except goobj.GoobjError:
            pass


def test_old_style_local_names_are_expanded(archives):
    """Objects that spell their own package `"".` (older compilers, asm without -p) get
    the full package path, in symbol names and relocation targets."""
    obj = goobj.read_package_archive(archives["p1"]).objects["_go_.o"]
    for s in obj.symbols:
        s.raw_name = s.raw_name.replace("example.com/p.", '"".')
        for r in s.relocs:
            r.target = r.target.replace("example.com/p.", '"".')
    obj.pkgpath = "example.com/p"
    goobj._name_symbols(obj)
    names = {s.name for s in obj.symbols}
    assert "example.com/p.(*Options).init" in names and not any('"".' in n for n in names)
    new = next(s for s in obj.symbols if s.name == "example.com/p.New")
    assert "example.com/p.(*Options).init" in {r.target for r in new.relocs}
