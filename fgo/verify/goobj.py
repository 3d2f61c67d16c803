"""Readers for what a Go build produces: package archives, Go object files, ELF binaries.

Pure Python, read-only, no Go program needed. Three layers:

* ``!<arch>`` archives (cmd/internal/archive): members such as ``__.PKGDEF`` (the
  export data, with the ``build id "..."`` line) and ``_go_.o`` (the object file);
  ``go tool pack`` may add more Go objects (from assembly) or native objects (cgo).
* The Go object file format of go1.27 (cmd/internal/goobj/objfile.go, magic
  ``\\x00go120ld``): header, string table, autolib/package/file lists, symbol
  definitions (name, ABI, kind, flags, size, align), relocations, aux symbols and
  data blocks. Relocation and aux targets are resolved to names the way
  cmd/internal/objfile does for ``go tool nm``/``objdump``; nameless aux symbols
  (funcinfo, pcsp, pcline, ...) are attributed to the function that owns them.
* ELF binaries: section headers and contents, ``.symtab``, notes (Go build ID,
  GNU build ID), ``.interp``, ``.comment`` and the ``.go.buildinfo`` blob (Go
  version and module/build settings as ``go version -m`` prints them).

The symbol-kind, relocation-type and builtin tables are read from the pinned
GOROOT's sources (stringer output), so names match the toolchain that made the
files; numeric fallbacks are used if a table is missing.
"""

from __future__ import annotations

import bisect
import functools
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from fgo import goarchive


class GoobjError(Exception):
    """The file is not what it claims to be, or is corrupt/truncated."""


# ---------------------------------------------------------------- constants

MAGIC = b"\x00go120ld"
GOOBJ_TEXT_PREFIX = b"go object "

# Package index (goobj.PkgIdx*).
PKGIDX_NONE = (1 << 31) - 1
PKGIDX_HASHED64 = PKGIDX_NONE - 1
PKGIDX_HASHED = PKGIDX_NONE - 2
PKGIDX_BUILTIN = PKGIDX_NONE - 3
PKGIDX_SELF = PKGIDX_NONE - 4
PKGIDX_INVALID = 0

# Blocks (goobj.Blk*).
(BLK_AUTOLIB, BLK_PKGIDX, BLK_FILE, BLK_SYMDEF, BLK_HASHED64DEF, BLK_HASHEDDEF,
 BLK_NONPKGDEF, BLK_NONPKGREF, BLK_REFFLAGS, BLK_HASH64, BLK_HASH, BLK_RELOCIDX,
 BLK_AUXIDX, BLK_DATAIDX, BLK_RELOC, BLK_AUX, BLK_DATA, BLK_REFNAME, BLK_END) = range(19)
NBLK = 19

SYM_SIZE = 8 + 2 + 1 + 1 + 1 + 4 + 4  # 21
RELOC_SIZE = 4 + 1 + 2 + 8 + 8  # 23
AUX_SIZE = 1 + 8  # 9
REFNAME_SIZE = 8 + 8  # 16
IMPORTED_PKG_SIZE = 8 + 8
HASH64_SIZE = 8
HASH_SIZE = 16
HEADER_SIZE = len(MAGIC) + 8 + 4 + 4 * NBLK

SYM_ABI_STATIC = 0xFFFF

OBJ_FLAGS = {1: "shared", 4: "from-assembly", 8: "unlinkable", 16: "std"}
SYM_FLAGS = ["dupok", "local", "typelink", "leaf", "nosplit", "reflectmethod", "gotype"]
SYM_FLAGS2 = ["usedininterface", "itab", "dict", "pkginit", "linkname", "linknamestd",
              "abiwrapper", "wasmexport"]

AUX_NAMES = ["gotype", "funcinfo", "funcdata", "dwarfinfo", "dwarfloc", "dwarfranges",
             "dwarflines", "pcsp", "pcfile", "pcline", "pcinline", "pcdata", "wasmimport",
             "wasmtype", "sehunwindinfo"]
AUX_GOTYPE, AUX_FUNCINFO, AUX_FUNCDATA, AUX_DWARFINFO = 0, 1, 2, 3
AUX_DWARF = {3, 4, 5, 6}

SECTION_OF_PKGIDX = {PKGIDX_SELF: "pkg", PKGIDX_HASHED64: "hashed64",
                     PKGIDX_HASHED: "hashed", PKGIDX_NONE: "nonpkg"}

DWARF_PREFIXES = ("go:info.", "go:loc.", "go:range.", "go:debuglines.", "go:cuinfo.",
                  "go:abstract.")


# ---------------------------------------------------- tables from the GOROOT

def _goroot_src() -> Path | None:
    from fgo.toolchain import ToolchainError, goroot
    try:
        return goroot() / "src"
    except (ToolchainError, OSError):  # pragma: no cover - numeric names only
        return None


def _stringer_table(relpath: str, typename: str) -> dict[int, str]:
    """Parse a stringer-generated file (the `_ = x[NAME-N]` lines)."""
    src = _goroot_src()
    if src is None:
        return {}
    try:
        text = (src / relpath).read_text()
    except OSError:
        return {}
    return {int(n): name for name, n in re.findall(r"_ = x\[(\w+)-(\d+)\]", text)}


@functools.cache
def sym_kinds() -> dict[int, str]:
    return _stringer_table("cmd/internal/objabi/symkind_string.go", "SymKind")


@functools.cache
def reloc_types() -> dict[int, str]:
    return _stringer_table("cmd/internal/objabi/reloctype_string.go", "RelocType")


@functools.cache
def builtins() -> list[tuple[str, int]]:
    src = _goroot_src()
    if src is None:
        return []
    try:
        text = (src / "cmd/internal/goobj/builtinlist.go").read_text()
    except OSError:
        return []
    return [(n, int(a)) for n, a in re.findall(r'\{"([^"]+)", (\d+)\}', text)]


def kind_name(kind: int) -> str:
    return sym_kinds().get(kind, f"SymKind({kind})")


def reloc_type_name(typ: int) -> str:
    weak = ""
    if typ & 0x8000:  # R_WEAK = -1 << 15 stored in a uint16
        weak, typ = "R_WEAK|", typ & 0x7FFF
    return weak + reloc_types().get(typ, f"RelocType({typ})")


def aux_name(typ: int) -> str:
    return AUX_NAMES[typ] if typ < len(AUX_NAMES) else f"aux{typ}"


def flag_names(flag: int, flag2: int) -> list[str]:
    out = [n for i, n in enumerate(SYM_FLAGS) if flag & (1 << i)]
    out += [n for i, n in enumerate(SYM_FLAGS2) if flag2 & (1 << i)]
    return out


# ---------------------------------------------------------------- archives

@dataclass
class ArMember:
    name: str
    offset: int  # of the data, in the archive file
    size: int
    data: bytes = field(repr=False)


def read_ar(data: bytes, what: str = "archive") -> list[ArMember]:
    """Members of a Go `!<arch>` archive (GNU long names are not used by Go)."""
    if not data.startswith(goarchive.MAGIC):
        raise GoobjError(f"{what}: not an archive (no !<arch> header)")
    off = len(goarchive.MAGIC)
    out: list[ArMember] = []
    while off < len(data):
        if data[off:off + 1] == b"\n" and off + 1 == len(data):  # stray pad
            break
        try:
            name, size = goarchive.member_header(data, off)
        except goarchive.ArchiveError as exc:
            raise GoobjError(f"{what}: {exc}") from None
        start = off + goarchive.HEADER_SIZE
        if size < 0 or start + size > len(data):
            raise GoobjError(f"{what}: member {name!r} is truncated")
        out.append(ArMember(name.rstrip("/"), start, size, data[start:start + size]))
        off = start + goarchive.padded(size)
    return out


# ---------------------------------------------------------------- objects

@dataclass
class Reloc:
    off: int
    size: int
    type: int
    add: int
    target: str  # resolved symbol name ("" for none)
    local: int | None = field(default=None, repr=False, compare=False)  # defined here: its index

    @property
    def type_name(self) -> str:
        return reloc_type_name(self.type)

    def describe(self) -> str:
        add = f"+{self.add}" if self.add > 0 else (str(self.add) if self.add else "")
        return f"{self.off:#x} {self.type_name}/{self.size} {self.target}{add}"


@dataclass
class AuxRef:
    type: int
    target: str  # display name of the aux symbol
    local: int | None  # index of the defined symbol it points to, if defined here

    @property
    def type_name(self) -> str:
        return aux_name(self.type)


@dataclass
class Symbol:
    index: int  # index among all defined symbols (pkg, hashed64, hashed, nonpkg)
    section: str  # "pkg", "hashed64", "hashed", "nonpkg"
    raw_name: str  # as stored ("" for nameless aux symbols)
    abi: int
    kind: int
    flag: int
    flag2: int
    size: int
    align: int
    data: bytes = field(repr=False)
    relocs: list[Reloc] = field(default_factory=list, repr=False)
    auxs: list[AuxRef] = field(default_factory=list, repr=False)
    hash: bytes = b""  # content hash (hashed sections only)
    owner: str = ""  # for aux symbols: name of the symbol that owns it
    owner_aux: str = ""  # ... and which aux slot (e.g. "pcline", "funcdata[1]")
    name: str = ""  # Go spelling; for nameless aux symbols "<owner> <aux>"
    data_off: int = 0  # where the data starts, from the start of the object (text header included)

    @property
    def kind_name(self) -> str:
        return kind_name(self.kind)

    @property
    def is_text(self) -> bool:
        return self.kind_name in ("STEXT", "STEXTFIPS")

    @property
    def is_dwarf(self) -> bool:
        return self.kind_name.startswith("SDWARF") or self.raw_name.startswith(DWARF_PREFIXES)

    @property
    def display(self) -> str:
        """Name plus an ABI note where it matters (ABI0 text, static symbols)."""
        if self.abi == SYM_ABI_STATIC:
            return f"{self.name} <static>"
        if self.is_text and self.abi == 0:
            return f"{self.name} <ABI0>"
        return self.name

    @property
    def flags(self) -> list[str]:
        return flag_names(self.flag, self.flag2)


@dataclass
class ObjFile:
    text_header: str  # e.g. "go object linux amd64 go1.27.3 GOAMD64=v1 X:..."
    fingerprint: bytes
    flags: int
    autolib: list[tuple[str, bytes]]  # imported packages and their fingerprints
    pkglist: list[str]  # referenced packages by index (index 0 is unused)
    files: list[str]
    symbols: list[Symbol]  # all definitions
    nonpkg_refs: list[str]
    ref_names: dict[tuple[int, int], str]
    pkgpath: str = ""

    @property
    def arch(self) -> str:
        f = self.text_header.split()
        return f[3] if len(f) >= 4 else ""

    @property
    def flag_names(self) -> list[str]:
        return [n for b, n in OBJ_FLAGS.items() if self.flags & b]

    def by_key(self) -> dict[tuple[str, int], Symbol]:
        """Symbols keyed by (name, abi); nameless aux symbols by their owner-derived name."""
        out: dict[tuple[str, int], Symbol] = {}
        for s in self.symbols:
            key = (s.name, s.abi)
            n = 2
            while key in out:  # duplicate names (e.g. shared content-addressed aux)
                key = (f"{s.name} #{n}", s.abi)
                n += 1
            out[key] = s
        return out


def _u32(b: bytes | memoryview, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def split_object_header(data: bytes, what: str = "object") -> tuple[str, int]:
    """The text header of a Go object ("go object ...\\n!\\n") and where the binary part starts."""
    if data.startswith(MAGIC):
        return "", 0
    if not data.startswith(GOOBJ_TEXT_PREFIX):
        raise GoobjError(f"{what}: not a Go object file")
    end = data.find(b"\n!\n")
    if end < 0:
        raise GoobjError(f"{what}: Go object file has no end of its text header")
    return data[:end].decode("utf-8", "replace"), end + 3


@dataclass
class _Blocks:
    """The binary part of an object file and its block offsets, for reading one block at a time."""
    b: memoryview
    offs: list[int]
    what: str  # the object's name, for errors

    def string(self, off: int) -> str:
        """The string whose (length, offset) pair is at OFF."""
        n, o = struct.unpack_from("<II", self.b, off)
        if o + n > len(self.b):
            raise GoobjError(f"{self.what}: corrupt Go object (string past the end)")
        return str(self.b[o:o + n], "utf-8", "replace")

    def count(self, blk: int, size: int) -> int:
        """How many entries of SIZE bytes block BLK holds."""
        return (self.offs[blk + 1] - self.offs[blk]) // size

    def strings(self, blk: int) -> list[str]:
        """Block BLK read as a list of strings (package list, file list)."""
        return [self.string(self.offs[blk] + 8 * i) for i in range(self.count(blk, 8))]


@dataclass
class _SymCounts:
    """How many symbols each definition block holds, and how many non-package references follow."""
    nsym: int
    nh64: int
    nh: int
    nnp: int
    nref: int

    @property
    def ndef(self) -> int:
        """All definitions: pkg, hashed64, hashed and nonpkg."""
        return self.nsym + self.nh64 + self.nh + self.nnp

    def local_index(self, pk: int, sx: int) -> int | None:
        """Index into the symbol blocks of reference (PK, SX) if it is to this object's symbols."""
        if pk == PKGIDX_SELF:
            return sx
        if pk == PKGIDX_HASHED64:
            return self.nsym + sx
        if pk == PKGIDX_HASHED:
            return self.nsym + self.nh64 + sx
        if pk == PKGIDX_NONE:
            return self.nsym + self.nh64 + self.nh + sx  # may run into the nonpkg refs
        return None


_RawSym = tuple[str, int, int, int, int, int, int]  # name, abi, kind, flag, flag2, size, align


def _read_header(b: memoryview, what: str) -> tuple[bytes, int, list[int]]:
    """Check the magic and read the header: fingerprint, flags and block offsets."""
    if bytes(b[:8]) != MAGIC:
        magic = bytes(b[:8])
        if magic.startswith(b"\x00go1") and magic.endswith(b"ld"):
            raise GoobjError(f"{what}: Go object of another version ({magic[1:].decode('latin-1')}), "
                             f"this reader knows {MAGIC[1:].decode()}")
        raise GoobjError(f"{what}: bad Go object magic")
    if len(b) < HEADER_SIZE:
        raise GoobjError(f"{what}: truncated Go object header")
    fingerprint = bytes(b[8:16])
    flags = _u32(b, 16)
    offs = list(struct.unpack_from(f"<{NBLK}I", b, 20))
    if any(offs[i] > offs[i + 1] for i in range(NBLK - 1)) or offs[-1] > len(b):
        raise GoobjError(f"{what}: corrupt Go object (block offsets out of order or past the end)")
    return fingerprint, flags, offs


def _read_autolib(blk: _Blocks) -> list[tuple[str, bytes]]:
    """The imported packages and their fingerprints."""
    autolib = []
    for i in range(blk.count(BLK_AUTOLIB, IMPORTED_PKG_SIZE)):
        o = blk.offs[BLK_AUTOLIB] + i * IMPORTED_PKG_SIZE
        autolib.append((blk.string(o), bytes(blk.b[o + 8:o + 16])))
    return autolib


def _sym_counts(blk: _Blocks) -> _SymCounts:
    """The sizes of the symbol definition and non-package reference blocks."""
    return _SymCounts(*(blk.count(k, SYM_SIZE) for k in
                        (BLK_SYMDEF, BLK_HASHED64DEF, BLK_HASHEDDEF, BLK_NONPKGDEF, BLK_NONPKGREF)))


def _read_raw_symbols(blk: _Blocks, n: int) -> list[_RawSym]:
    """The first N entries of the (contiguous) symbol definition and reference blocks."""
    def rawsym(i: int) -> _RawSym:
        o = blk.offs[BLK_SYMDEF] + i * SYM_SIZE  # the def blocks are contiguous
        abi, typ, flag, flag2, siz, align = struct.unpack_from("<HBBBII", blk.b, o + 8)
        return blk.string(o), abi, typ, flag, flag2, siz, align

    return [rawsym(i) for i in range(n)]


def _read_ref_names(blk: _Blocks) -> dict[tuple[int, int], str]:
    """The names of symbols of other packages, by (package index, symbol index)."""
    ref_names: dict[tuple[int, int], str] = {}
    for i in range(blk.count(BLK_REFNAME, REFNAME_SIZE)):
        o = blk.offs[BLK_REFNAME] + i * REFNAME_SIZE
        pk, sx = struct.unpack_from("<II", blk.b, o)
        ref_names[(pk, sx)] = blk.string(o + 8)
    return ref_names


@dataclass
class _SymRefs:
    """Resolves a symbol reference (package index, symbol index) to a name and local index."""
    counts: _SymCounts
    raws: list[_RawSym]
    ref_names: dict[tuple[int, int], str]
    pkglist: list[str]
    bl: list[tuple[str, int]]  # builtins()

    def resolve(self, pk: int, sx: int) -> tuple[str, int | None]:
        """The target's name, and its index among the definitions if it is defined here."""
        if pk == PKGIDX_INVALID:
            return "", None
        if pk == PKGIDX_BUILTIN:
            return (self.bl[sx][0] if sx < len(self.bl) else f"<builtin {sx}>"), None
        li = self.counts.local_index(pk, sx)
        if li is not None:
            if li >= len(self.raws):
                return f"<bad ref {pk}:{sx}>", None
            return self.raws[li][0], (li if li < self.counts.ndef else None)
        name = self.ref_names.get((pk, sx))
        if name is None:
            pkg = self.pkglist[pk] if pk < len(self.pkglist) else f"pkg{pk}"
            name = f"{pkg}.<sym {sx}>"
        return name, None


def _index_block(blk: _Blocks, k: int, ndef: int) -> tuple[int, ...]:
    """Index block K: where each definition's entries start, plus the end."""
    return struct.unpack_from(f"<{ndef + 1}I", blk.b, blk.offs[k])


def _read_relocs_auxs(blk: _Blocks, nrel: int, nauxs: int) -> tuple[list[tuple], list[tuple]]:
    """All relocations and all aux references, unresolved."""
    b, offs = blk.b, blk.offs
    if offs[BLK_RELOC] + nrel * RELOC_SIZE > len(b) or offs[BLK_AUX] + nauxs * AUX_SIZE > len(b):
        raise GoobjError(f"{blk.what}: corrupt Go object (relocations past the end)")
    all_relocs = list(struct.iter_unpack("<iBHqII", b[offs[BLK_RELOC]:offs[BLK_RELOC] + nrel * RELOC_SIZE]))
    all_auxs = list(struct.iter_unpack("<BII", b[offs[BLK_AUX]:offs[BLK_AUX] + nauxs * AUX_SIZE]))
    return all_relocs, all_auxs


def _section_and_hash(blk: _Blocks, counts: _SymCounts, i: int) -> tuple[str, bytes]:
    """Which definition block symbol I is in, and its content hash if it is hashed."""
    nsym, nh64 = counts.nsym, counts.nh64
    if i < nsym:
        return "pkg", b""
    if i < nsym + nh64:
        ho = blk.offs[BLK_HASH64] + (i - nsym) * 8
        return "hashed64", bytes(blk.b[ho:ho + 8])
    if i < nsym + nh64 + counts.nh:
        ho = blk.offs[BLK_HASH] + (i - nsym - nh64) * 16
        return "hashed", bytes(blk.b[ho:ho + 16])
    return "nonpkg", b""


def _read_symbols(blk: _Blocks, counts: _SymCounts, refs: _SymRefs, start: int) -> list[Symbol]:
    """The defined symbols with their data, relocations and aux symbols resolved."""
    ndef, resolve = counts.ndef, refs.resolve
    ridx, aidx, didx = (_index_block(blk, k, ndef) for k in (BLK_RELOCIDX, BLK_AUXIDX, BLK_DATAIDX))
    all_relocs, all_auxs = _read_relocs_auxs(blk, ridx[-1] if ndef else 0, aidx[-1] if ndef else 0)
    dbase = blk.offs[BLK_DATA]
    symbols: list[Symbol] = []
    for i in range(ndef):
        sect, hsh = _section_and_hash(blk, counts, i)
        d0, d1 = didx[i], didx[i + 1]
        if d1 < d0 or dbase + d1 > len(blk.b):
            raise GoobjError(f"{blk.what}: corrupt Go object (data of symbol {i} out of range)")
        relocs = [Reloc(roff, rsiz, rtyp, radd, *resolve(rpk, rsx))
                  for roff, rsiz, rtyp, radd, rpk, rsx in all_relocs[ridx[i]:ridx[i + 1]]]
        auxs = [AuxRef(atyp, *resolve(apk, asx)) for atyp, apk, asx in all_auxs[aidx[i]:aidx[i + 1]]]
        sym = Symbol(i, sect, *refs.raws[i], bytes(blk.b[dbase + d0:dbase + d1]), relocs, auxs, hsh)
        sym.data_off = start + dbase + d0
        symbols.append(sym)
    return symbols


def parse_object(data: bytes, what: str = "object", pkgpath: str = "") -> ObjFile:
    """Parse a Go object file (with or without its "go object" text header)."""
    text, start = split_object_header(data, what)
    b = memoryview(data)[start:]
    fingerprint, flags, offs = _read_header(b, what)
    blk = _Blocks(b, offs, what)
    try:
        autolib = _read_autolib(blk)
        pkglist = blk.strings(BLK_PKGIDX)
        files = blk.strings(BLK_FILE)
        counts = _sym_counts(blk)
        raws = _read_raw_symbols(blk, counts.ndef + counts.nref)
        ref_names = _read_ref_names(blk)
        refs = _SymRefs(counts, raws, ref_names, pkglist, builtins())
        symbols = _read_symbols(blk, counts, refs, start)
        nonpkg_refs = [raws[i][0] for i in range(counts.ndef, counts.ndef + counts.nref)]
    except (struct.error, IndexError, ValueError, OverflowError):
        raise GoobjError(f"{what}: truncated or corrupt Go object") from None

    obj = ObjFile(text, fingerprint, flags, autolib, pkglist, files, symbols, nonpkg_refs,
                  ref_names, pkgpath)
    _name_symbols(obj)
    return obj


def _name_symbols(obj: ObjFile) -> None:
    """Give every symbol its Go spelling; name nameless aux symbols after their owner."""
    pkg = obj.pkgpath or guess_pkgpath(obj)
    obj.pkgpath = pkg

    def expand(name: str) -> str:
        # Objects from before go1.20/asm without -p wrote the package as `"".`.
        if pkg and '"".' in name:
            return name.replace('"".', pkg + ".")
        return name

    for s in obj.symbols:
        s.name = expand(s.raw_name)
    # Owners: first owner wins (content-addressed aux symbols may be shared).
    for s in obj.symbols:
        counts: dict[int, int] = {}
        for a in s.auxs:
            n = counts.get(a.type, 0)
            counts[a.type] = n + 1
            if a.local is None or a.type == AUX_GOTYPE:
                continue
            t = obj.symbols[a.local]
            if t.owner:
                continue
            slot = a.type_name if a.type not in (2, 11) else f"{a.type_name}[{n}]"
            t.owner, t.owner_aux = s.name, slot
    # Nameless symbols nobody owns as aux (e.g. method-name strings): the first
    # symbol that points at them through a relocation owns them.
    for s in obj.symbols:
        for r in s.relocs:
            if r.local is not None and not r.target:
                t = obj.symbols[r.local]
                if not t.owner and not t.raw_name:
                    t.owner, t.owner_aux = s.name, f"{r.type_name} target at {r.off:#x}"
    for s in obj.symbols:
        if not s.name:
            s.name = f"{s.owner} <{s.owner_aux}>" if s.owner else f"<nameless #{s.index}>"
    for s in obj.symbols:
        for r in s.relocs:
            r.target = expand(r.target) if r.target or r.local is None else obj.symbols[r.local].name
        for a in s.auxs:
            a.target = expand(a.target) if a.target else (
                obj.symbols[a.local].name if a.local is not None else "")


def guess_pkgpath(obj: ObjFile) -> str:
    """The package path, from the package's own text symbols (`path.Func`)."""
    votes: dict[str, int] = {}
    for s in obj.symbols:
        if s.section != "pkg" or not s.is_text or s.raw_name.startswith(('"".', "go:", "type:")):
            continue
        p = symbol_package(s.raw_name)
        if p:
            votes[p] = votes.get(p, 0) + 1
    return max(votes, key=lambda k: votes[k]) if votes else ""


def object_pkgpath(data: bytes) -> str:
    """The package path of a Go object, reading only its symbol definitions (cheap)."""
    try:
        _, start = split_object_header(data)
        b = memoryview(data)[start:]
        if bytes(b[:8]) != MAGIC:
            return ""
        offs = struct.unpack_from(f"<{NBLK}I", b, 20)
        votes: dict[str, int] = {}
        text = {k for k, v in sym_kinds().items() if v in ("STEXT", "STEXTFIPS")} or {1, 2}
        for o in range(offs[BLK_SYMDEF], offs[BLK_SYMDEF + 1], SYM_SIZE):
            n, so, _abi, typ = struct.unpack_from("<IIHB", b, o)
            if typ not in text:
                continue
            name = str(b[so:so + n], "utf-8", "replace")
            if name.startswith(('"".', "go:", "type:")):
                continue
            p = symbol_package(name)
            if p:
                votes[p] = votes.get(p, 0) + 1
                if votes[p] >= 8:
                    break
        return max(votes, key=lambda k: votes[k]) if votes else ""
    except (struct.error, GoobjError):
        return ""


def symbol_package(name: str) -> str:
    """The package path of a Go symbol name: text up to the first '.' after the last '/'."""
    cut = name.find("[")  # generic instantiations carry type args with paths
    head = name if cut < 0 else name[:cut]
    slash = head.rfind("/")
    dot = head.find(".", slash + 1)
    return head[:dot] if dot > 0 else ""


def dwarf_function(name: str) -> str:
    """For a DWARF symbol name (go:info.F, go:loc.F, ...) the function F, else ""."""
    for p in DWARF_PREFIXES:
        if name.startswith(p) and p != "go:cuinfo.":  # compile-unit info: no function
            return name[len(p):]
    return ""


# ---------------------------------------------------------------- package archives

BUILD_ID_RE = re.compile(rb'\nbuild id "([^"\n]*)"\n')


@dataclass
class PackageArchive:
    path: str
    members: list[ArMember]
    pkgdef: bytes | None
    build_id: str
    objects: dict[str, ObjFile]  # member name -> parsed Go object
    native: list[str]  # members that are neither __.PKGDEF nor Go objects
    errors: dict[str, str]  # member name -> why it could not be parsed

    @property
    def pkgpath(self) -> str:
        for o in self.objects.values():
            if o.pkgpath:
                return o.pkgpath
        return ""


def pkgdef_build_id(pkgdef: bytes) -> str:
    m = BUILD_ID_RE.search(pkgdef[:4096])
    return m.group(1).decode("utf-8", "replace") if m else ""


def read_package_archive(path: str | Path, data: bytes | None = None,
                         pkgpath: str = "") -> PackageArchive:
    """Read a Go package archive (`go build -o x.a`, `go tool compile -pack`, GOCACHE `-d` files)."""
    path = str(path)
    if data is None:
        data = _read(path)
    members = read_ar(data, path)
    pkgdef = None
    objects: dict[str, ObjFile] = {}
    native: list[str] = []
    errors: dict[str, str] = {}
    for m in members:
        if m.name == "__.PKGDEF":
            pkgdef = m.data
        elif m.data.startswith(GOOBJ_TEXT_PREFIX) or m.data.startswith(MAGIC):
            try:
                objects[m.name] = parse_object(m.data, f"{path}({m.name})", pkgpath)
            except GoobjError as exc:
                errors[m.name] = str(exc)
        else:
            native.append(m.name)
    # Asm objects may use `"".`: give all objects the package path found anywhere.
    found = pkgpath or next((o.pkgpath for o in objects.values() if o.pkgpath), "")
    if found:
        for name, o in objects.items():
            if o.pkgpath != found and any('"".' in s.raw_name for s in o.symbols):
                objects[name] = parse_object(next(m.data for m in members if m.name == name),
                                             f"{path}({name})", found)
    bid = pkgdef_build_id(pkgdef) if pkgdef is not None else ""
    return PackageArchive(path, members, pkgdef, bid, objects, native, errors)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise GoobjError(f"{path}: is a directory") from None
    except FileNotFoundError:
        raise GoobjError(f"{path}: no such file") from None
    except OSError as exc:
        raise GoobjError(f"{path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- ELF

@dataclass
class ElfSection:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    data: bytes = field(repr=False)  # b"" for SHT_NOBITS

    @property
    def alloc(self) -> bool:
        return bool(self.flags & 2)


@dataclass
class ElfSymbol:
    name: str
    value: int
    size: int
    shndx: int
    type: int  # STT_*


@dataclass(eq=False)
class ElfFile:
    path: str
    elfclass: int  # 32 or 64
    machine: int
    etype: int
    entry: int
    sections: list[ElfSection]
    symbols: list[ElfSymbol]
    go_build_id: str
    gnu_build_id: str
    interp: str
    comment: str
    buildinfo: BuildInfo | None
    data: bytes = field(repr=False)

    def section(self, name: str) -> ElfSection | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def host_linked(self) -> bool:
        """Linked by an external (host) linker: gcc/clang/ld leave .comment, crt files, .eh_frame.

        (Go's internal linker writes a .note.gnu.build-id too, derived from the Go build
        ID, so that note alone says nothing.)"""
        return bool(self.comment) or any(
            s.name in (".note.ABI-tag", ".eh_frame", ".init_array", ".init") for s in self.sections)

    def symbol_at(self, section: ElfSection, addr: int) -> ElfSymbol | None:
        """The symbol covering ADDR, else the closest one starting before it."""
        syms = self._sorted(section.index)
        values = self._values_by_section[section.index]
        i = bisect.bisect_right(values, addr) - 1
        if i < 0:
            return None
        for j in range(i, max(i - 16, -1), -1):  # prefer a symbol that covers addr
            if syms[j].value <= addr < syms[j].value + syms[j].size:
                return syms[j]
        return syms[i]

    @functools.cached_property
    def _values_by_section(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {k: [s.value for s in v] for k, v in self._by_section.items()}
        return _DefaultEmpty(out)

    @functools.cached_property
    def _by_section(self) -> dict[int, list[ElfSymbol]]:
        out: dict[int, list[ElfSymbol]] = {}
        for s in self.symbols:
            if s.name and s.type != 4:  # not STT_FILE
                out.setdefault(s.shndx, []).append(s)
        for v in out.values():
            v.sort(key=lambda s: (s.value, -s.size))
        return out

    def _sorted(self, shndx: int) -> list[ElfSymbol]:
        return self._by_section.get(shndx, [])


class _DefaultEmpty(dict):
    def __missing__(self, key):
        return []


@dataclass
class BuildInfo:
    go_version: str
    modinfo: str  # as `go version -m` shows it (path/mod/dep/build lines)

    @property
    def settings(self) -> dict[str, str]:
        """The `build KEY=VALUE` lines (-trimpath, -buildmode, vcs.revision, ...)."""
        out = {}
        for line in self.modinfo.splitlines():
            f = line.split("\t", 1)
            if len(f) == 2 and f[0] == "build":
                k, _, v = f[1].partition("=")
                out[k] = v
        return out

    @property
    def main_path(self) -> str:
        for line in self.modinfo.splitlines():
            f = line.split("\t")
            if len(f) >= 2 and f[0] == "path":
                return f[1]
        return ""


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def read_elf(path: str | Path, data: bytes | None = None) -> ElfFile:
    path = str(path)
    if data is None:
        data = _read(path)
    if not is_elf(data):
        raise GoobjError(f"{path}: not an ELF file")
    try:
        return _read_elf(path, data)
    except (struct.error, IndexError, ValueError, OverflowError):
        raise GoobjError(f"{path}: truncated or corrupt ELF file") from None


def _read_elf(path: str, data: bytes) -> ElfFile:
    cls, enc = data[4], data[5]
    if enc != 1:
        raise GoobjError(f"{path}: big-endian ELF is not supported")
    if cls == 2:
        etype, machine, _v, entry, _phoff, shoff, _fl, _eh, _phes, _phn, shentsize, shnum, shstrndx = \
            struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
        shfmt = "<IIQQQQIIQQ"
    elif cls == 1:
        etype, machine, _v, entry, _phoff, shoff, _fl, _eh, _phes, _phn, shentsize, shnum, shstrndx = \
            struct.unpack_from("<HHIIIIIHHHHHH", data, 16)
        shfmt = "<IIIIIIIIII"
    else:
        raise GoobjError(f"{path}: unknown ELF class {cls}")
    raw = []
    for i in range(shnum):
        (name, typ, flags, addr, off, size, link, info, _al, entsize) = \
            struct.unpack_from(shfmt, data, shoff + i * shentsize)
        raw.append((name, typ, flags, addr, off, size, link, entsize))
    if shstrndx >= len(raw) and raw:
        raise GoobjError(f"{path}: corrupt ELF (bad section name table index)")
    strtab = raw[shstrndx] if raw else None

    def cstr(tab_off: int, tab_size: int, off: int) -> str:
        if off >= tab_size:
            return ""
        start = tab_off + off
        end = data.find(b"\0", start, tab_off + tab_size)
        return data[start:end if end >= 0 else tab_off + tab_size].decode("utf-8", "replace")

    sections = []
    for i, (name, typ, flags, addr, off, size, link, entsize) in enumerate(raw):
        sname = cstr(strtab[4], strtab[5], name) if strtab else ""
        sdata = b"" if typ == 8 else data[off:off + size]  # SHT_NOBITS
        sections.append(ElfSection(i, sname, typ, flags, addr, off, size, sdata))

    symbols: list[ElfSymbol] = []
    for i, (name, typ, flags, addr, off, size, link, entsize) in enumerate(raw):
        if typ != 2:  # SHT_SYMTAB
            continue
        st = raw[link]
        if cls == 2:
            fmt, esz = "<IBBHQQ", 24
        else:
            fmt, esz = "<IIIBBH", 16
        for j in range(1, size // esz):
            vals = struct.unpack_from(fmt, data, off + j * esz)
            if cls == 2:
                n, info, _o, shndx, value, ssize = vals
            else:
                n, value, ssize, info, _o, shndx = vals
            symbols.append(ElfSymbol(cstr(st[4], st[5], n), value, ssize, shndx, info & 0xF))

    go_bid = gnu_bid = ""
    for s in sections:
        if s.type != 7:  # SHT_NOTE
            continue
        for owner, ntype, desc in _notes(s.data):
            if owner == b"Go" and ntype == 4:
                go_bid = desc.rstrip(b"\0").decode("utf-8", "replace")
            elif owner == b"GNU" and ntype == 3:
                gnu_bid = desc.hex()
    interp_s = next((s for s in sections if s.name == ".interp"), None)
    interp = interp_s.data.rstrip(b"\0").decode("utf-8", "replace") if interp_s else ""
    comment_s = next((s for s in sections if s.name == ".comment"), None)
    comment = " | ".join(x.decode("utf-8", "replace") for x in comment_s.data.split(b"\0") if x) \
        if comment_s else ""
    elf = ElfFile(path, 64 if cls == 2 else 32, machine, etype, entry, sections, symbols,
                  go_bid, gnu_bid, interp, comment, None, data)
    elf.buildinfo = _buildinfo(elf)
    return elf


def _notes(b: bytes):
    off = 0
    while off + 12 <= len(b):
        namesz, descsz, ntype = struct.unpack_from("<III", b, off)
        off += 12
        name = b[off:off + namesz].rstrip(b"\0")
        off += (namesz + 3) & ~3
        desc = b[off:off + descsz]
        off += (descsz + 3) & ~3
        yield name, ntype, desc


BUILDINFO_MAGIC = b"\xff Go buildinf:"


def uvarint(b: bytes, off: int) -> tuple[int, int]:
    """encoding/binary.Uvarint at OFF of B: (value, offset after it)."""
    x = shift = 0
    while off < len(b):
        c = b[off]
        off += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, off
        shift += 7
    raise GoobjError(f"truncated varint at offset {off}")


def _buildinfo(elf: ElfFile) -> BuildInfo | None:
    """debug/buildinfo: only the inline-string form (flags&2), used since go1.18."""
    s = elf.section(".go.buildinfo")
    blob = s.data if s is not None else b""
    if not blob:
        i = elf.data.find(BUILDINFO_MAGIC)
        if i < 0:
            return None
        blob = elf.data[i:i + 64 * 1024]
    if not blob.startswith(BUILDINFO_MAGIC) or len(blob) < 32:
        return None
    if not blob[15] & 2:
        return None  # pointer form (pre-1.18): not needed for the pinned toolchain
    try:
        n, off = uvarint(blob, 32)
        vers = blob[off:off + n].decode("utf-8", "replace")
        off += n
        n, off = uvarint(blob, off)
        mod = blob[off:off + n]
    except GoobjError:
        return None
    if len(mod) >= 33 and mod[-17:-16] == b"\n":  # 16-byte sentinels around modinfo
        mod = mod[16:-16]
    return BuildInfo(vers, mod.decode("utf-8", "replace"))


# ---------------------------------------------------------------- detection

def file_kind(path: str | Path, data: bytes | None = None) -> str:
    """'archive', 'object', 'elf' — or GoobjError saying what it is not."""
    path = str(path)
    if data is None:
        data = _read(path)
    if data.startswith(goarchive.MAGIC):
        return "archive"
    if data.startswith((GOOBJ_TEXT_PREFIX, MAGIC)):
        return "object"
    if is_elf(data):
        return "elf"
    if not data:
        raise GoobjError(f"{path}: empty file")
    raise GoobjError(f"{path}: not a Go package archive, Go object file or ELF binary")
