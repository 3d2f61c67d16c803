"""`fgo diff A B`: compare two package archives, Go objects or binaries down to the symbol.

The comparison core is plain functions returning dataclasses (``compare_files``,
``compare_archives``, ``compare_objects``, ``compare_binaries``) so `fgo verify`
and tests use exactly what the command prints. ``report_dict`` turns any result
into JSON-ready data, ``render`` into text.

Symbols are matched by (name, ABI); nameless aux symbols (funcinfo, pcline,
DWARF of a function, ...) are named after the function that owns them, so a
change in one function's body is reported as that function, with its aux
symbols listed under it. Relocations are compared by resolved target name, not
by index, so renumbering alone is not a difference in content (it still shows
up as an ordering/layout finding when the bytes differ).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path


from fgo.verify import goobj
from fgo.verify.goobj import GoobjError, ObjFile, Symbol

MAX_LIST = 12  # relocation/aux lines kept per symbol
MAX_SYMS_JSON = 500

# --------------------------------------------------------------------- results


@dataclass
class SymbolDiff:
    name: str  # Go spelling (with <ABI0>/<static> where it matters)
    status: str  # "changed", "only-a", "only-b"
    kind: str
    function: str  # the function this belongs to ("" for plain data)
    role: str  # "code", "data", "pcline", "dwarfinfo", "funcdata[1]", ...
    size_a: int | None = None
    size_b: int | None = None
    differs: list[str] = field(default_factory=list)  # kind/size/flags/align/data/relocs/aux
    first_diff: int | None = None  # first differing byte of the symbol's data
    line_a: str = ""  # source position of first_diff (text symbols), e.g. "x.go:12"
    line_b: str = ""
    relocs: list[str] = field(default_factory=list)  # "- ..." / "+ ..."
    aux: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ObjectDiff:
    member: str
    identical: bool
    first_diff: int | None = None  # first differing byte of the member
    header: list[str] = field(default_factory=list)  # text header, fingerprint, flags, imports, files
    symbols: list[SymbolDiff] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)  # functions whose code/aux/DWARF differ
    data_symbols: list[str] = field(default_factory=list)  # differing symbols not in a function
    layout: list[str] = field(default_factory=list)  # same symbols, different order/encoding
    error: str = ""


@dataclass
class ArchiveDiff:
    a: str
    b: str
    pkgpath: str
    identical: bool  # byte for byte
    matched: bool  # identical, or differing only where ignored (build ID)
    build_id_a: str = ""
    build_id_b: str = ""
    build_id_differs: bool = False
    pkgdef: str = ""  # "" (same), "build-id-only", "differs", "absent" (no __.PKGDEF)
    pkgdef_first_diff: int | None = None
    pkgdef_context: list[str] = field(default_factory=list)  # printable text there, A and B
    members_only_a: list[str] = field(default_factory=list)
    members_only_b: list[str] = field(default_factory=list)
    member_order: list[str] = field(default_factory=list)
    build_id_members: list[str] = field(default_factory=list)  # differ only in the build id line
    objects: list[ObjectDiff] = field(default_factory=list)
    native: list[str] = field(default_factory=list)  # differing non-Go members
    summary: str = ""

    @property
    def functions(self) -> list[str]:
        return _uniq(f for o in self.objects for f in o.functions)


@dataclass
class SectionDiff:
    name: str
    status: str  # "changed", "only-a", "only-b"
    size_a: int | None = None
    size_b: int | None = None
    addr_a: int | None = None
    addr_b: int | None = None
    first_diff: int | None = None  # offset inside the section
    differing_bytes: int = 0  # in the common prefix
    symbols: list[str] = field(default_factory=list)  # symbols covering differing bytes
    context_a: str = ""  # printable text around the first difference
    context_b: str = ""


@dataclass
class BinaryDiff:
    a: str
    b: str
    identical: bool
    matched: bool
    go_build_id_a: str = ""
    go_build_id_b: str = ""
    gnu_build_id_a: str = ""
    gnu_build_id_b: str = ""
    host_linked_a: bool = False
    host_linked_b: bool = False
    header: list[str] = field(default_factory=list)
    sections: list[SectionDiff] = field(default_factory=list)
    buildinfo: list[str] = field(default_factory=list)  # differing build settings
    symbols: list[str] = field(default_factory=list)  # Go symbols with differing bytes
    findings: list[str] = field(default_factory=list)  # likely causes
    flags: list[str] = field(default_factory=list)  # flags that would make it reproducible
    only_ignorable: bool = False  # all differences are in build ID / build info


@dataclass
class FileDiff:
    """What `fgo diff` returns: one of the three comparisons."""
    kind: str  # "archive", "object", "binary"
    archive: ArchiveDiff | None = None
    object: ObjectDiff | None = None
    binary: BinaryDiff | None = None

    @property
    def matched(self) -> bool:
        if self.archive is not None:
            return self.archive.matched
        if self.binary is not None:
            return self.binary.matched
        return self.object is not None and self.object.identical


def _uniq(xs) -> list:
    seen, out = set(), []
    for x in xs:
        if x and x not in seen:
            seen.add(x)
            out.append(x)
    return out


def first_difference(a: bytes, b: bytes) -> int | None:
    """Offset of the first differing byte (or of the end of the shorter), None if equal."""
    if a == b:
        return None
    n = min(len(a), len(b))
    lo = 0
    step = 4096
    while lo < n:  # coarse scan in blocks, then bytes
        hi = min(lo + step, n)
        if a[lo:hi] != b[lo:hi]:
            for i in range(lo, hi):
                if a[i] != b[i]:
                    return i
        lo = hi
    return n


def differing_ranges(a: bytes, b: bytes, block: int = 256, limit: int = 100000):
    """Yield (start, end) of differing stretches in the common prefix, coarse to BLOCK."""
    n = min(len(a), len(b))
    pos = 0
    count = 0
    while pos < n and count < limit:
        end = min(pos + 65536, n)
        if a[pos:end] == b[pos:end]:
            pos = end
            continue
        while pos < end:
            e = min(pos + block, end)
            if a[pos:e] != b[pos:e]:
                i = pos
                while a[i] == b[i]:
                    i += 1
                j = e
                while a[j - 1] == b[j - 1]:
                    j -= 1
                yield i, j
                count += 1
            pos = e


# ------------------------------------------------------------- objects


def _pc_value(tab: bytes, target: int, min_lc: int) -> int:
    """cmd/internal/objfile pcValue: value of a pc-value table at TARGET."""
    val, pc, i, first = -1, 0, 0, True
    try:
        while i < len(tab):
            uv, i = goobj.uvarint(tab, i)
            if uv == 0 and not first:
                break
            first = False
            delta = ~(uv >> 1) if uv & 1 else uv >> 1
            pcd, i = goobj.uvarint(tab, i)
            pc += pcd * min_lc
            val += delta
            if target < pc:
                return val
    except GoobjError:  # a truncated table: no line
        pass
    return -1


MIN_LC = {"amd64": 1, "386": 1, "wasm": 1, "s390x": 2, "riscv64": 2}


def source_line(obj: ObjFile, sym: Symbol, off: int) -> str:
    """file:line of byte OFF of text symbol SYM, from its pcfile/pcline aux tables."""
    if not sym.is_text:
        return ""
    tabs = {}
    for a in sym.auxs:
        if a.type_name in ("pcline", "pcfile") and a.local is not None:
            tabs[a.type_name] = obj.symbols[a.local].data
    if len(tabs) != 2:
        return ""
    lc = MIN_LC.get(obj.arch, 4)
    line = _pc_value(tabs["pcline"], off, lc)
    fidx = _pc_value(tabs["pcfile"], off, lc)
    if line < 0 or not 0 <= fidx < len(obj.files):
        return ""
    return f"{obj.files[fidx].rsplit('/', 1)[-1]}:{line}"


def _attribution(sym: Symbol, referrers: dict[str, str]) -> tuple[str, str]:
    """(function, role) for a symbol."""
    if sym.owner:
        owner_fn = sym.owner
        return owner_fn, sym.owner_aux
    fn = goobj.dwarf_function(sym.name)
    if fn:
        return fn.removesuffix("$abstract"), sym.name.split(".", 1)[0].removeprefix("go:") + " (DWARF)"
    if sym.is_text:
        return sym.name, "code"
    # Content-addressed helpers (gclocals, string literals, ...) exist for the function
    # that references them; named package data stands on its own.
    if sym.section in ("hashed", "hashed64") or sym.name.startswith("gclocals·"):
        ref = referrers.get(sym.name, "")
        if ref:
            return ref, "data used by it"
    return "", "data"


def _referrers(obj: ObjFile) -> dict[str, str]:
    """Symbol name -> the function (or symbol) that first references it (aux or reloc)."""
    out: dict[str, str] = {}
    for s in obj.symbols:
        base = s.owner or s.name
        if s.owner:
            continue
        for a in s.auxs:
            if a.target and a.type != goobj.AUX_GOTYPE:
                out.setdefault(a.target, base)
    for s in obj.symbols:
        base = s.owner or (s.name if s.is_text else "")
        if not base:
            continue
        for r in s.relocs:
            if r.target:
                out.setdefault(r.target, base)
    return out


def _multiset_diff(xs: list[str], ys: list[str]) -> list[str]:
    ca, cb = Counter(xs), Counter(ys)
    removed = ca - cb
    added = cb - ca
    out = []
    for x in xs:
        if removed.get(x, 0) > 0:
            out.append(f"- {x}")
            removed[x] -= 1
    for y in ys:
        if added.get(y, 0) > 0:
            out.append(f"+ {y}")
            added[y] -= 1
    if not out and xs != ys:
        out.append("  same relocations, in a different order")
    return out


def _compare_symbol(oa: ObjFile, sa: Symbol, ob: ObjFile, sb: Symbol,
                    refs_a: dict[str, str]) -> SymbolDiff | None:
    differs = []
    if sa.kind != sb.kind:
        differs.append("kind")
    if sa.size != sb.size:
        differs.append("size")
    if (sa.flag, sa.flag2) != (sb.flag, sb.flag2):
        differs.append("flags")
    if sa.align != sb.align:
        differs.append("align")
    if sa.data != sb.data:
        differs.append("data")
    ra = [r.describe() for r in sa.relocs]
    rb = [r.describe() for r in sb.relocs]
    if ra != rb:
        differs.append("relocs")
    xa = [f"{a.type_name} {a.target}" for a in sa.auxs]
    xb = [f"{a.type_name} {a.target}" for a in sb.auxs]
    if xa != xb:
        differs.append("aux")
    if not differs:
        return None
    fn, role = _attribution(sa, refs_a)
    d = SymbolDiff(sa.display, "changed", sa.kind_name, fn, role, sa.size, sb.size, differs)
    if "kind" in differs:
        d.notes.append(f"kind {sa.kind_name} -> {sb.kind_name}")
    if "flags" in differs:
        d.notes.append(f"flags {sa.flags} -> {sb.flags}")
    if "align" in differs:
        d.notes.append(f"align {sa.align} -> {sb.align}")
    if "data" in differs and sa.name.startswith("go:cuinfo.producer."):
        d.notes.append(f"compiler flags recorded in DWARF: {sa.data.decode('utf-8', 'replace')!r} "
                       f"vs {sb.data.decode('utf-8', 'replace')!r}")
    if "data" in differs:
        d.first_diff = first_difference(sa.data, sb.data) or 0
        d.line_a = source_line(oa, sa, d.first_diff)
        d.line_b = source_line(ob, sb, d.first_diff)
    if "relocs" in differs:
        d.relocs = _multiset_diff(ra, rb)[:MAX_LIST]
    if "aux" in differs:
        d.aux = _multiset_diff(xa, xb)[:MAX_LIST]
    return d


def _only(sym: Symbol, status: str, refs: dict[str, str]) -> SymbolDiff:
    fn, role = _attribution(sym, refs)
    d = SymbolDiff(sym.display, status, sym.kind_name, fn, role)
    if status == "only-a":
        d.size_a = sym.size
    else:
        d.size_b = sym.size
    return d


def _header_diffs(oa: ObjFile, ob: ObjFile) -> list[str]:
    out = []
    if oa.text_header != ob.text_header:
        ha, hb = (goobj.BUILD_ID_RE.sub(b"\n", h.encode()).decode() for h in (oa.text_header, ob.text_header))
        if ha == hb:
            out.append("object header: only the build id line differs")
        else:
            out.append(f"object header: {oa.text_header.strip()!r} vs {ob.text_header.strip()!r}")
    if oa.flags != ob.flags:
        out.append(f"object flags: {oa.flag_names} vs {ob.flag_names}")
    la, lb = dict(oa.autolib), dict(ob.autolib)
    changed = [p for p in la if p in lb and la[p] != lb[p]]
    for p in changed:
        out.append(f"imported package {p}: fingerprint {la[p].hex()} vs {lb[p].hex()} "
                   f"(its export data differs)")
    for p in la.keys() - lb.keys():
        out.append(f"imports {p} only in A")
    for p in lb.keys() - la.keys():
        out.append(f"imports {p} only in B")
    if not changed and la.keys() == lb.keys() and list(la) != list(lb):
        out.append("imported packages listed in a different order")
    if oa.fingerprint != ob.fingerprint:
        out.append(f"fingerprint (hash of this package's export data): "
                   f"{oa.fingerprint.hex()} vs {ob.fingerprint.hex()}")
    if oa.pkglist != ob.pkglist:
        if sorted(oa.pkglist) == sorted(ob.pkglist):
            out.append("referenced-package index is in a different order")
        else:
            out.append(f"referenced packages differ: only A {sorted(set(oa.pkglist) - set(ob.pkglist))[:5]}, "
                       f"only B {sorted(set(ob.pkglist) - set(oa.pkglist))[:5]}")
    if oa.files != ob.files:
        fa, fb = set(oa.files), set(ob.files)
        if fa == fb:
            out.append("file table is in a different order")
        else:
            out.append(f"file table differs: only A {sorted(fa - fb)[:3]}, only B {sorted(fb - fa)[:3]}"
                       + (" (absolute build paths: build with -trimpath)" if
                          any(f.startswith("/") for f in fa ^ fb) else ""))
    return out


def compare_objects(oa: ObjFile, ob: ObjFile, member: str = "_go_.o",
                    raw_a: bytes | None = None, raw_b: bytes | None = None) -> ObjectDiff:
    """Compare two parsed Go objects symbol by symbol."""
    d = ObjectDiff(member, identical=raw_a is not None and raw_a == raw_b)
    if d.identical:
        return d
    if raw_a is not None and raw_b is not None:
        d.first_diff = first_difference(raw_a, raw_b)
    d.header = _header_diffs(oa, ob)
    ka, kb = oa.by_key(), ob.by_key()
    refs_a, refs_b = _referrers(oa), _referrers(ob)
    for key, sa in ka.items():
        sb = kb.get(key)
        if sb is None:
            d.symbols.append(_only(sa, "only-a", refs_a))
            continue
        sd = _compare_symbol(oa, sa, ob, sb, refs_a)
        if sd is not None:
            d.symbols.append(sd)
    for key, sb in kb.items():
        if key not in ka:
            d.symbols.append(_only(sb, "only-b", refs_b))
    # Which functions: the code or aux or DWARF of each function that differs.
    d.functions = _uniq(s.function for s in d.symbols if s.function)
    d.data_symbols = _uniq(s.name for s in d.symbols if not s.function)
    if not d.symbols:
        d.layout = _layout_diffs(oa, ob, ka, kb)
        if not d.layout and not d.header and raw_a != raw_b:
            d.layout.append("same symbols and contents; the encoding differs "
                            "(string table or block layout)")
    d.identical = raw_a == raw_b if raw_a is not None else (not d.symbols and not d.header)
    return d


def _layout_diffs(oa: ObjFile, ob: ObjFile, ka: dict, kb: dict) -> list[str]:
    out = []
    la, lb = list(ka), list(kb)
    if la != lb:
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                out.append(f"symbol definitions are the same but in a different order: "
                           f"#{i} is {x[0]} in A, {y[0]} in B (typical of map-iteration order "
                           f"leaking into the compiler's output)")
                break
    for sa, sb in zip(oa.symbols, ob.symbols):
        if sa.name == sb.name and [a.target for a in sa.auxs] == [a.target for a in sb.auxs] \
                and [(a.type, a.local) for a in sa.auxs] != [(a.type, a.local) for a in sb.auxs]:
            out.append(f"aux symbols of {sa.name} are numbered differently")
            break
    return out


# ------------------------------------------------------------- archives


def _mask_build_id(pkgdef: bytes) -> bytes:
    return goobj.BUILD_ID_RE.sub(b'\nbuild id ""\n', pkgdef[:4096], count=1) + pkgdef[4096:]


def compare_archives(a: str, b: str, data_a: bytes | None = None, data_b: bytes | None = None,
                     ignore_build_id: bool = False, pkgpath: str = "") -> ArchiveDiff:
    """Compare two package archives: members, export data, objects down to the symbol."""
    data_a = goobj._read(a) if data_a is None else data_a
    data_b = goobj._read(b) if data_b is None else data_b
    if data_a == data_b:
        members = goobj.read_ar(data_a, a)  # still validate it is an archive
        bid = next((goobj.pkgdef_build_id(m.data) for m in members if m.name == "__.PKGDEF"), "")
        return ArchiveDiff(a, b, pkgpath, True, True, bid, bid, summary="identical")
    mem_a, mem_b = goobj.read_ar(data_a, a), goobj.read_ar(data_b, b)
    ma = {m.name: m for m in mem_a}
    mb = {m.name: m for m in mem_b}
    pa, pb = ma.get("__.PKGDEF"), mb.get("__.PKGDEF")
    oa, ob = pa or ma.get("_go_.o"), pb or mb.get("_go_.o")  # build id: export data, else object
    bid_a = goobj.pkgdef_build_id(oa.data) if oa else ""
    bid_b = goobj.pkgdef_build_id(ob.data) if ob else ""
    d = ArchiveDiff(a, b, pkgpath, False, False, bid_a, bid_b)
    d.build_id_differs = bid_a != bid_b
    d.members_only_a = [n for n in ma if n not in mb]
    d.members_only_b = [n for n in mb if n not in ma]
    if [n for n in ma if n in mb] != [n for n in mb if n in ma]:
        d.member_order = [m.name for m in mem_a]
    # Export data.
    if pa is None and pb is None:
        d.pkgdef = "absent"
    if pa is not None and pb is not None and pa.data != pb.data:
        if _mask_build_id(pa.data) == _mask_build_id(pb.data):
            d.pkgdef = "build-id-only"
        else:
            d.pkgdef = "differs"
            xa, xb = _mask_build_id(pa.data), _mask_build_id(pb.data)
            d.pkgdef_first_diff = first_difference(xa, xb) or 0
            d.pkgdef_context = [_printable_context(xa, d.pkgdef_first_diff, 24),
                                _printable_context(xb, d.pkgdef_first_diff, 24)]
    # Objects and native members: parse only what differs beyond the build id.
    differing = []
    for name, m in ma.items():
        if name not in mb or name == "__.PKGDEF" or m.data == mb[name].data:
            continue
        if _mask_build_id(m.data) == _mask_build_id(mb[name].data):
            d.build_id_members.append(name)
            continue
        differing.append(name)
    if differing:
        A = goobj.read_package_archive(a, data_a, pkgpath)
        B = goobj.read_package_archive(b, data_b, pkgpath or A.pkgpath)
        d.pkgpath = pkgpath or A.pkgpath or B.pkgpath
        for name in differing:
            m, n = ma[name], mb[name]
            if name in A.objects and name in B.objects:
                d.objects.append(compare_objects(A.objects[name], B.objects[name], name,
                                                 m.data, n.data))
            elif name in A.errors or name in B.errors:
                raise GoobjError(A.errors.get(name) or B.errors[name])
            else:
                d.native.append(_native_member_diff(name, m.data, n.data))
    if not d.pkgpath and "_go_.o" in ma:
        d.pkgpath = goobj.object_pkgpath(ma["_go_.o"].data)
    d.matched = (not d.members_only_a and not d.members_only_b and not d.member_order
                 and d.pkgdef in ("", "absent", "build-id-only") and not d.objects and not d.native
                 and (ignore_build_id or not (d.build_id_differs or d.build_id_members
                                              or d.pkgdef == "build-id-only")))
    d.summary = _archive_summary(d)
    return d


def _native_member_diff(name: str, a: bytes, b: bytes) -> str:
    """A non-Go member (cgo's gcc objects): which ELF sections and symbols differ."""
    where = f"{name}: differs at byte {first_difference(a, b)}"
    if not (goobj.is_elf(a) and goobj.is_elf(b)):
        return where
    try:
        bd = compare_binaries(name, name, a, b)
    except GoobjError:
        return where
    parts = []
    for s in bd.sections:
        if s.status != "changed":
            parts.append(f"section {s.name} {s.status}")
        else:
            parts.append(f"{s.name}" + (f" in {', '.join(s.symbols[:4])}" if s.symbols else ""))
    return f"{where} (ELF object; {'; '.join(parts[:6])})" if parts else where


def _archive_summary(d: ArchiveDiff) -> str:
    parts = []
    fns = d.functions
    if fns:
        more = f" and {len(fns) - 3} more" if len(fns) > 3 else ""
        parts.append(f"{len(fns)} function(s) differ: {', '.join(fns[:3])}{more}")
    data = _uniq(s for o in d.objects for s in o.data_symbols)
    if data:
        more = f" and {len(data) - 3} more" if len(data) > 3 else ""
        parts.append(f"{len(data)} data symbol(s) differ: {', '.join(data[:3])}{more}")
    for o in d.objects:
        if not o.symbols and (o.layout or o.header):
            parts.append(f"{o.member}: {(o.layout or o.header)[0]}")
        if o.error:
            parts.append(f"{o.member}: {o.error}")
    if d.pkgdef == "differs":
        parts.append("export data (__.PKGDEF) differs")
    if d.members_only_a or d.members_only_b:
        parts.append(f"members only in A {d.members_only_a}, only in B {d.members_only_b}")
    if d.member_order:
        parts.append("archive members in a different order")
    if d.native:
        parts.append(f"native object(s) differ: {', '.join(n.split(':')[0] for n in d.native)}")
    if not parts and d.build_id_differs:
        ca, cb = d.build_id_a.rpartition("/")[2], d.build_id_b.rpartition("/")[2]
        same = " (content IDs equal)" if ca == cb else ""
        parts.append(f"only the build ID differs{same}: its action ID (a hash of the sources, "
                     "flags and dependencies) differs; the compiled code is the same")
    return "; ".join(parts) or "differs"


# ------------------------------------------------------------- binaries

IGNORABLE_SECTIONS = {".note.go.buildid", ".note.gnu.build-id", ".go.buildinfo"}


def _printable_context(data: bytes, off: int, width: int = 48) -> str:
    if off is None or off >= len(data):
        return ""
    lo = off
    while lo > 0 and off - lo < width and 32 <= data[lo - 1] < 127:
        lo -= 1
    hi = off
    while hi < len(data) and hi - off < width and 32 <= data[hi] < 127:
        hi += 1
    s = data[lo:hi].decode("ascii", "replace")
    return s if len(s) >= 4 else ""


def _split_build_id(bid: str) -> list[str]:
    return bid.split("/") if bid else []


def compare_binaries(a: str, b: str, data_a: bytes | None = None, data_b: bytes | None = None,
                     ignore_build_id: bool = False, ignore_buildinfo: bool = False) -> BinaryDiff:
    """Compare two ELF binaries: sections, symbols covering differences, build IDs, build info."""
    data_a = goobj._read(a) if data_a is None else data_a
    data_b = goobj._read(b) if data_b is None else data_b
    ea, eb = goobj.read_elf(a, data_a), goobj.read_elf(b, data_b)
    d = BinaryDiff(a, b, data_a == data_b, data_a == data_b, ea.go_build_id, eb.go_build_id,
                   ea.gnu_build_id, eb.gnu_build_id, ea.host_linked, eb.host_linked)
    if d.identical:
        return d
    if (ea.elfclass, ea.machine, ea.etype) != (eb.elfclass, eb.machine, eb.etype):
        d.header.append(f"different ELF class/machine/type: {(ea.elfclass, ea.machine, ea.etype)} "
                        f"vs {(eb.elfclass, eb.machine, eb.etype)}")
    if ea.entry != eb.entry:
        d.header.append(f"entry point {ea.entry:#x} vs {eb.entry:#x}")
    sa = {s.name: s for s in ea.sections if s.name}
    sb = {s.name: s for s in eb.sections if s.name}
    if [s for s in sa if s in sb] != [s for s in sb if s in sa]:
        d.header.append("sections are in a different order")
    syms: list[str] = []
    for name, s in sa.items():
        t = sb.get(name)
        if t is None:
            d.sections.append(SectionDiff(name, "only-a", size_a=s.size, addr_a=s.addr))
            continue
        if s.data == t.data and s.size == t.size and s.addr == t.addr:
            continue
        sd = SectionDiff(name, "changed", s.size, t.size, s.addr, t.addr)
        sd.first_diff = first_difference(s.data, t.data)
        names: list[str] = []
        for lo, hi in differing_ranges(s.data, t.data):
            sd.differing_bytes += sum(1 for i in range(lo, hi) if s.data[i] != t.data[i]) \
                if hi - lo < 4096 else hi - lo
            if len(names) < 200 and s.alloc and name not in (".symtab", ".strtab"):
                sym = ea.symbol_at(s, s.addr + lo)
                if sym is not None:
                    names.append(sym.name)
        if s.size != t.size:
            sd.differing_bytes += abs(s.size - t.size)
        sd.symbols = _uniq(names)[:MAX_LIST * 2]
        if sd.first_diff is not None and s.data:
            sd.context_a = _printable_context(s.data, sd.first_diff)
            sd.context_b = _printable_context(t.data, sd.first_diff)
        syms.extend(sd.symbols)
        d.sections.append(sd)
    for name, t in sb.items():
        if name not in sa:
            d.sections.append(SectionDiff(name, "only-b", size_b=t.size, addr_b=t.addr))
    d.symbols = _uniq(syms)
    # Build info (go version -m): settings that differ.
    bia, bib = ea.buildinfo, eb.buildinfo
    if bia and bib:
        if bia.go_version != bib.go_version:
            d.buildinfo.append(f"go version {bia.go_version} vs {bib.go_version}")
        xa, xb = bia.settings, bib.settings
        for k in _uniq(list(xa) + list(xb)):
            if xa.get(k) != xb.get(k):
                d.buildinfo.append(f"build {k}: {xa.get(k, '(unset)')} vs {xb.get(k, '(unset)')}")
        if bia.modinfo != bib.modinfo and not d.buildinfo:
            d.buildinfo.append("module information (path/mod/dep lines) differs")
    _diagnose_link(d, ea, eb)
    changed = {s.name for s in d.sections}
    d.only_ignorable = bool(changed) and changed <= (IGNORABLE_SECTIONS | {".rodata"}) \
        and not d.header and _only_buildinfo_in_rodata(d) and not any(
            s.status != "changed" or s.size_a != s.size_b for s in d.sections)
    ignorable_ok = d.only_ignorable and ignore_build_id and (ignore_buildinfo or not d.buildinfo)
    d.matched = d.identical or ignorable_ok
    return d


def _only_buildinfo_in_rodata(d: BinaryDiff) -> bool:
    ro = next((s for s in d.sections if s.name == ".rodata"), None)
    return ro is None or all(n.startswith(("runtime.modinfo", "runtime.buildVersion"))
                             for n in ro.symbols)


_PATH_RE = re.compile(r"(?:^|[^\w/])/(?:[\w.+@~-]+/)+[\w.+@~-]*")


def _diagnose_link(d: BinaryDiff, ea: goobj.ElfFile, eb: goobj.ElfFile) -> None:
    """Name the likely cause of a binary difference and the flags that remove it."""
    fa, fb = _split_build_id(d.go_build_id_a), _split_build_id(d.go_build_id_b)
    changed = {s.name for s in d.sections}
    content = changed - IGNORABLE_SECTIONS
    sa, sb = (ea.buildinfo.settings if ea.buildinfo else {}), (eb.buildinfo.settings if eb.buildinfo else {})

    if d.host_linked_a != d.host_linked_b:
        d.findings.append("one binary was linked by the host (external) linker, the other internally")
        d.flags.append("-ldflags=-linkmode=internal")
    elif d.host_linked_a:
        d.findings.append(f"both binaries were linked by the host linker ({ea.comment or 'gcc/clang'}); "
                          "host linkers may embed their own build ID, timestamps or paths")
        if changed & {".note.gnu.build-id"} or d.gnu_build_id_a != d.gnu_build_id_b:
            d.findings.append(f"the GNU build ID differs: {d.gnu_build_id_a or '-'} vs {d.gnu_build_id_b or '-'} "
                              "(the Samsara case: the host linker picked a random build ID)")
        d.flags.append("-ldflags=-linkmode=internal")
    if d.go_build_id_a != d.go_build_id_b and fa and fb:
        if len(fa) == len(fb) and fa[-1] == fb[-1]:
            d.findings.append("the Go build IDs differ only in their action-ID parts: the code is the same, "
                              "the inputs hashed into the action ID (flags, environment) differ")
        elif not content - {".rodata"}:
            d.findings.append("the Go build IDs differ")
    if any(k.startswith("vcs") for k in set(sa) ^ set(sb)) or any(
            k.startswith("vcs") and sa.get(k) != sb.get(k) for k in sa):
        d.findings.append("version-control stamping differs (vcs.revision/vcs.time/vcs.modified)")
        d.flags.append("-buildvcs=false")
    if sa.get("-trimpath") != sb.get("-trimpath"):
        d.findings.append("one build used -trimpath, the other did not")
        d.flags.append("-trimpath")
    if sa.get("-ldflags") != sb.get("-ldflags"):
        d.findings.append(f"different -ldflags: {sa.get('-ldflags', '(none)')!r} vs {sb.get('-ldflags', '(none)')!r}")
    if sa.get("-gcflags") != sb.get("-gcflags"):
        d.findings.append(f"different -gcflags recorded in the build info: "
                          f"{sa.get('-gcflags', '(none)')!r} vs {sb.get('-gcflags', '(none)')!r}")
    for k in ("CGO_ENABLED", "GOAMD64", "GOARM64", "-tags", "-buildmode", "-compiler", "-asmflags"):
        if sa.get(k) != sb.get(k):
            d.findings.append(f"build setting {k} differs: {sa.get(k, '(unset)')} vs {sb.get(k, '(unset)')}")
    paths = [s for s in d.sections if s.name not in IGNORABLE_SECTIONS
             and s.context_a != s.context_b
             and (_PATH_RE.search(s.context_a) or _PATH_RE.search(s.context_b))]
    if paths and sa.get("-trimpath") != "true":
        s = paths[0]
        d.findings.append(f"embedded paths differ in {s.name}: {s.context_a!r} vs {s.context_b!r} "
                          "(the build directories differ)")
        if "-trimpath" not in d.flags:
            d.flags.append("-trimpath")
    if not d.findings and content:
        d.findings.append("code or data differ: " + ", ".join(sorted(content))
                          + (f" (first symbols: {', '.join(d.symbols[:5])})" if d.symbols else ""))
    if content and not d.flags:
        d.findings.append("no archive-level cause is visible from the binaries alone: "
                          "compare the package archives (fgo verify does)")


# ------------------------------------------------------------- entry points


def compare_files(a: str, b: str, ignore_build_id: bool = False,
                  ignore_buildinfo: bool = False) -> FileDiff:
    """Compare two files of the same kind (archives, objects or ELF binaries)."""
    data_a, data_b = goobj._read(a), goobj._read(b)
    ka, kb = goobj.file_kind(a, data_a), goobj.file_kind(b, data_b)
    if ka != kb:
        raise GoobjError(f"cannot compare a {_KIND_WORD[ka]} ({a}) with a {_KIND_WORD[kb]} ({b})")
    if ka == "archive":
        return FileDiff("archive", archive=compare_archives(a, b, data_a, data_b, ignore_build_id))
    if ka == "object":
        oa = goobj.parse_object(data_a, a)
        ob = goobj.parse_object(data_b, b)
        return FileDiff("object", object=compare_objects(oa, ob, Path(a).name, data_a, data_b))
    return FileDiff("binary", binary=compare_binaries(a, b, data_a, data_b, ignore_build_id,
                                                      ignore_buildinfo))


_KIND_WORD = {"archive": "package archive", "object": "Go object file", "elf": "binary"}


def report_dict(x) -> dict:
    """JSON-ready dict of any result dataclass (derived properties included)."""
    d = asdict(x)
    if isinstance(x, FileDiff):
        d["matched"] = x.matched
        if x.archive is not None:
            d["archive"]["functions"] = x.archive.functions
    if isinstance(x, ArchiveDiff):
        d["functions"] = x.functions
    _cap(d)
    return d


def _cap(d) -> None:
    if isinstance(d, dict):
        for k, v in list(d.items()):
            if k == "symbols" and isinstance(v, list) and len(v) > MAX_SYMS_JSON:
                d[k] = v[:MAX_SYMS_JSON]
                d[k + "_truncated"] = len(v)
            _cap(d[k])
    elif isinstance(d, list):
        for v in d:
            _cap(v)


# ------------------------------------------------------------- text


def render(x, max_symbols: int = 20) -> str:
    if isinstance(x, FileDiff):
        if x.archive is not None:
            return render_archive(x.archive, max_symbols)
        if x.object is not None:
            return render_object(x.object, max_symbols, "")
        assert x.binary is not None
        return render_binary(x.binary)
    if isinstance(x, ArchiveDiff):
        return render_archive(x, max_symbols)
    if isinstance(x, BinaryDiff):
        return render_binary(x)
    return render_object(x, max_symbols, "")


def render_archive(d: ArchiveDiff, max_symbols: int = 20) -> str:
    what = f"package {d.pkgpath}" if d.pkgpath else "package archives"
    if d.identical:
        return f"{what}: identical ({d.a} = {d.b})"
    head = "equivalent (build IDs differ only)" if d.matched else "DIFFER"
    lines = [f"{what}: {head}", f"  A: {d.a}", f"  B: {d.b}", f"  {d.summary}"]
    if d.build_id_differs:
        lines.append(f"  build id: {d.build_id_a or '-'} vs {d.build_id_b or '-'}")
    if d.pkgdef == "differs":
        ctx = d.pkgdef_context or ["", ""]
        why = ("source paths embedded in it differ (build with -trimpath)"
               if ctx[0] != ctx[1] and any(".go" in c and "/" in c for c in ctx)
               else "declarations, inlinable bodies, types or source positions differ")
        lines.append(f"  __.PKGDEF (export data): differs at byte {d.pkgdef_first_diff} "
                     f"(build id masked): {why}")
        if any(d.pkgdef_context):
            lines.append(f"    text there: {d.pkgdef_context[0]!r} vs {d.pkgdef_context[1]!r}")
    elif d.pkgdef == "build-id-only":
        lines.append("  __.PKGDEF (export data): same apart from the build id line")
    elif d.pkgdef == "absent":
        lines.append("  no __.PKGDEF member (a link object)")
    elif "__.PKGDEF" not in d.members_only_a + d.members_only_b:
        lines.append("  __.PKGDEF (export data): identical")
    for m in d.build_id_members:
        lines.append(f"  {m}: same apart from the build id line")
    for m in d.members_only_a:
        lines.append(f"  member {m}: only in A")
    for m in d.members_only_b:
        lines.append(f"  member {m}: only in B")
    if d.member_order:
        lines.append(f"  members in a different order (A: {d.member_order})")
    for o in d.objects:
        lines.append(render_object(o, max_symbols, "  "))
    for n in d.native:
        lines.append(f"  native member {n}")
    return "\n".join(lines)


def render_object(o: ObjectDiff, max_symbols: int, ind: str) -> str:
    if o.identical:
        return f"{ind}{o.member}: identical"
    lines = [f"{ind}{o.member}: differs (first differing byte {o.first_diff})"]
    if o.error:
        lines.append(f"{ind}  cannot read: {o.error}")
    for h in o.header:
        lines.append(f"{ind}  {h}")
    for l in o.layout:
        lines.append(f"{ind}  {l}")
    for label, names in (("functions", o.functions), ("data symbols", o.data_symbols)):
        if names:
            more = f" (+{len(names) - max_symbols} more)" if len(names) > max_symbols else ""
            lines.append(f"{ind}  {label} that differ: {', '.join(names[:max_symbols])}{more}")
    if o.symbols:
        lines.append(f"{ind}  {len(o.symbols)} symbol(s):")
    for s in o.symbols[:max_symbols]:
        lines.append(f"{ind}    {_symbol_line(s)}")
        lines += [f"{ind}      {n}" for n in s.notes]
        lines += [f"{ind}      reloc {r}" for r in s.relocs]
        lines += [f"{ind}      aux {a}" for a in s.aux]
    if len(o.symbols) > max_symbols:
        lines.append(f"{ind}    ... {len(o.symbols) - max_symbols} more (--all or --json for all)")
    return "\n".join(lines)


def _symbol_line(s: SymbolDiff) -> str:
    if s.status == "only-a":
        what = f"only in A (size {s.size_a})"
    elif s.status == "only-b":
        what = f"only in B (size {s.size_b})"
    else:
        size = f"size {s.size_a}" if s.size_a == s.size_b else f"size {s.size_a} -> {s.size_b}"
        what = f"{size}; differs in {'/'.join(s.differs)}"
        if s.first_diff is not None:
            what += f"; first differing byte +{s.first_diff:#x}"
            if s.line_a:
                what += f" ({s.line_a}" + (f" vs {s.line_b}" if s.line_b and s.line_b != s.line_a else "") + ")"
    of = ""
    if s.function and s.function != s.name:
        of = f" [{s.role} of {s.function}]"
    return f"{s.name} {s.kind}{of}: {what}"


def render_binary(d: BinaryDiff) -> str:
    if d.identical:
        return f"binaries: identical ({d.a} = {d.b})"
    head = "equivalent (only build ID / build info differ)" if d.matched else "DIFFER"
    lines = [f"binaries: {head}", f"  A: {d.a}", f"  B: {d.b}"]
    if d.go_build_id_a != d.go_build_id_b:
        lines.append(f"  Go build ID: {d.go_build_id_a or '-'} vs {d.go_build_id_b or '-'}")
    if d.gnu_build_id_a != d.gnu_build_id_b:
        lines.append(f"  GNU build ID: {d.gnu_build_id_a or '-'} vs {d.gnu_build_id_b or '-'}")
    lines.append(f"  linked by: {'host linker' if d.host_linked_a else 'Go internal linker'} vs "
                 f"{'host linker' if d.host_linked_b else 'Go internal linker'}")
    for h in d.header:
        lines.append(f"  {h}")
    for b in d.buildinfo:
        lines.append(f"  build info: {b}")
    for status in ("only-a", "only-b"):
        names = [s.name for s in d.sections if s.status == status]
        if names:
            lines.append(f"  sections only in {status[-1].upper()}: {' '.join(names)}")
    for s in d.sections:
        if s.status != "changed":
            continue
        size = f"size {s.size_a}" if s.size_a == s.size_b else f"size {s.size_a} -> {s.size_b}"
        line = f"  section {s.name}: {size}, {s.differing_bytes} byte(s) differ, first at +{s.first_diff:#x}" \
            if s.first_diff is not None else f"  section {s.name}: {size}, moved {s.addr_a:#x} -> {s.addr_b:#x}"
        lines.append(line)
        if s.symbols:
            lines.append(f"    in: {', '.join(s.symbols[:8])}" + (" ..." if len(s.symbols) > 8 else ""))
        if s.context_a or s.context_b:
            lines.append(f"    text: {s.context_a!r} vs {s.context_b!r}")
    for f in d.findings:
        lines.append(f"  cause: {f}")
    if d.flags:
        lines.append(f"  to make it reproducible: {' '.join(_uniq(d.flags))}")
    return "\n".join(lines)
