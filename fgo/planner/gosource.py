"""Go source -> function units, cheaply.

Two stages, so that lark only ever sees a few tokens per declaration:

1. A pre-scan (regular expressions and str.count, all in C):
   - `_mask`: one regex pass finds every comment, interpreted/raw string and rune literal
     exactly as Go's scanner would (the leftmost token wins, so "//" inside a string or a quote
     inside a comment never starts anything) and blanks their insides with spaces, keeping
     newlines and the string/rune delimiters. Positions and line numbers are unchanged.
   - top-level cuts: every `package|import|func|type|var|const` keyword of the masked text is a
     candidate; its brace depth is the running balance of "{" minus "}" counted between
     candidates; a depth-0 keyword starts a declaration iff it follows a ";" — explicit, or the
     one Go's scanner inserts at a newline after an identifier, literal, `)`, `]` or `}` (so the
     `func` of `var f = func() {...}` or `type F func()` is not a cut). Braces suffice: inside
     "(...)" or "[...]" a ";" is only valid between the specs of a var/const/type/import
     group, and a spec never starts with one of these keywords.
   - per declaration, a short walk over the header's brackets: the receiver and type
     parameters stay verbatim, other groups become opaque tokens; a function's body is the
     first depth-0 "{" not preceded by `interface`/`struct`, and ends at the declaration's
     last "}" (the declaration is balanced, so nothing inside the body is walked).
2. lark (go_toplevel.lark, LALR) parses the skeleton of the whole file: package clause,
   imports, function declarations with receivers and type parameters, other declarations.

Measures per function come from str.count over the masked body (comments excluded).
"""

from __future__ import annotations

import bisect
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.lexer import Lexer

# --------------------------------------------------------------------------------------------
# lexical masking

# Leftmost-match alternation = Go's scanner deciding what a quote or slash starts.
# Unterminated literals/comments run to the end of line/file (the file is broken then anyway).
_LEX_RE = re.compile(
    r"[/\"`'](?:"                      # one of the four starters, then (by the starter):
    r"(?<=/)/[^\n]*"                  # line comment (also //line and //go: directives)
    r"|(?<=/)\*.*?(?:\*/|\Z)"          # general comment (no nesting in Go)
    r'|(?<=")(?:[^"\\\n]|\\.)*"?'      # interpreted string, escapes incl. \"
    r"|(?<=`)[^`]*`?"                  # raw string, may span lines, no escapes
    r"|(?<=')(?:[^'\\\n]|\\.)*'?)",     # rune literal: 'a', '\'', '"', '\x41', '{'
    re.DOTALL)


def _blank(s: str) -> str:
    if "\n" not in s:
        return " " * len(s)
    return "\n".join(" " * len(part) for part in s.split("\n"))


def _mask_repl(m: re.Match[str]) -> str:
    s = m.group()
    c = s[0]
    if c == "/":
        return " " * len(s) if s[1] == "/" else _blank(s)
    if len(s) >= 2 and s[-1] == c:
        return c + _blank(s[1:-1]) + c
    return c + _blank(s[1:])  # unterminated


def mask(text: str) -> str:
    """TEXT with comments blanked and string/rune literal contents blanked (same length)."""
    return _LEX_RE.sub(_mask_repl, text)


# No leading \b: sre then skips fast on the first letters; the preceding character is
# checked in Python (see _keywords).
_KW_RE = re.compile(r"[ftvcip](?:unc|ype|ar|onst|mport|ackage)\b")
_BR_RE = re.compile(r"[][(){}]")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = ")]}"
# characters that end a token after which a newline inserts ";" (identifier/keyword/number
# characters, closing brackets, string/rune delimiters; "++"/"--" are handled separately)
_SEMI_END = set(")]}\"'`")
_GROUP_BUDGET = 48  # bracket events walked in a var/const/type decl before "@@" takes the rest


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _brace_balance(s: str, i: int, j: int) -> int:
    """Brace balance of s[i:j] (without copying it)."""
    return s.count("{", i, j) - s.count("}", i, j)


def _starts_decl(masked: str, pos: int) -> bool:
    """Does the depth-0 keyword at POS start a top-level declaration (follows a ';')?"""
    lo = pos
    while True:
        lo2 = max(0, lo - 4096)
        before = masked[lo2:pos].rstrip()
        if before or lo2 == 0:
            break
        lo = lo2
    if not before:
        return True  # start of file
    last = before[-1]
    if last == ";":
        return True
    if "\n" not in masked[lo2 + len(before):pos]:
        return False
    if last in _SEMI_END or last.isalnum() or last == "_" or (not last.isascii() and last.isalpha()):
        return True
    return before.endswith(("++", "--"))


# --------------------------------------------------------------------------------------------
# data

@dataclass
class FuncUnit:
    """One function or method declaration of a package (closures are inside it)."""

    file: str                   # path as given to the scanner
    line: int                   # 1-based line of the `func` keyword (raw, before //line)
    col: int                    # 1-based column (characters) of the `func` keyword
    receiver: str | None        # receiver base type name ("R" for `func (r *R[T]) M()`)
    name: str                   # function or method name ("_" and "init" included)
    is_generic: bool            # has type parameters, or is a method of a generic type
    recv_pointer: bool = False  # receiver is *T
    has_body: bool = True       # false for declarations implemented in assembly
    body_chars: int = 0         # characters from "{" to "}" of the body, comments included
    body_lines: int = 0         # lines the body spans
    code_chars: int = 0         # non-blank characters of the body, comments excluded
    n_parens: int = 0           # "(" in the body: calls, conversions, signatures (work proxy)
    n_blocks: int = 0           # "{" in the body: blocks, composite literals
    n_closures: int = 0         # func literals in the body (estimate)
    end_line: int = 0           # line of the body's closing "}"
    pos: str = ""               # "file:line" after //line directives, if any apply
    index: int = 0              # order in the package (file order, then source order)
    symbol: str = ""            # compiler-style name: F, T.M, (*T).M, init.0, ...


@dataclass
class FileScan:
    path: str
    package: str
    imports: list[str]
    chars: int
    lines: int
    func_chars: int             # characters of function declarations (header + body)
    other_chars: int            # characters of var/const/type/import declarations
    n_decls: int
    n_type_decls: int = 0       # `type` declarations (a grouped one counts once)


@dataclass
class PackageScan:
    """Scan of one package's files (as passed to one compile)."""

    files: list[FileScan] = field(default_factory=list)
    units: list[FuncUnit] = field(default_factory=list)
    package: str = ""
    seconds: float = 0.0        # wall time of the scan

    @property
    def imports(self) -> list[str]:
        return sorted({i for f in self.files for i in f.imports})

    @property
    def total_chars(self) -> int:
        return sum(f.chars for f in self.files)

    @property
    def total_lines(self) -> int:
        return sum(f.lines for f in self.files)

    def features(self) -> dict[str, float]:
        """Package-level sums the cost model uses."""
        u = [x for x in self.units if x.has_body]
        return {
            "files": float(len(self.files)),
            "chars": float(self.total_chars),
            "lines": float(self.total_lines),
            "other_chars": float(sum(f.other_chars for f in self.files)),
            "funcs": float(len(u)),
            "generic_funcs": float(sum(1 for x in u if x.is_generic)),
            "code_chars": float(sum(x.code_chars for x in u)),
            "generic_code_chars": float(sum(x.code_chars for x in u if x.is_generic)),
            "parens": float(sum(x.n_parens for x in u)),
            "blocks": float(sum(x.n_blocks for x in u)),
            "closures": float(sum(x.n_closures for x in u)),
            # superlinear passes (regalloc, liveness) make big functions cost more per char
            "code_sq": float(sum(x.code_chars * x.code_chars for x in u)) / 1e4,
            "imports": float(len(self.imports)),
            "methods": float(sum(1 for x in u if x.receiver is not None)),
            "value_methods": float(sum(1 for x in u if x.receiver is not None
                                       and not x.recv_pointer)),
            "type_decls": float(sum(f.n_type_decls for f in self.files)),
        }


class ScanError(Exception):
    """A file the planner cannot parse (the package is then simply not split)."""


# --------------------------------------------------------------------------------------------
# lark

class _TopLevel(Transformer):  # type: ignore[type-arg]
    def recv_type(self, ch: list[Any]) -> tuple[bool, str, bool]:
        ptr = False
        for c in ch:
            if isinstance(c, Token):
                if c.type == "STAR":
                    ptr = True
                elif c.type in ("NAME", "BLANK"):
                    return ptr, str(c), any(x == "ARGS" for x in ch)
            elif isinstance(c, tuple):
                p, n, g = c
                return ptr or p, n, g
        raise ScanError("receiver without a type name")

    def bad_recv(self, ch: list[Any]) -> tuple[bool, str, bool]:
        # invalid receivers go/ast still parses (`pkg.T`, `[]int`): no base type name
        return isinstance(ch[0], Token) and ch[0].type == "STAR", "?", False

    def type_args(self, ch: list[Any]) -> str:
        return "ARGS"

    def type_params(self, ch: list[Any]) -> str:
        return "TPARAMS"

    def body(self, ch: list[Any]) -> str:
        return "BODY"

    def recv_param(self, ch: list[Any]) -> tuple[bool, tuple[bool, str, bool]]:
        return len(ch) == 2, ch[-1]

    def receiver(self, ch: list[Any]) -> tuple[bool, str, bool] | str:
        # Invalid but parsed by go/ast: `func () f()` (no receiver), `func (a, b T)` and
        # `func (x *T, y *T)` (go/ast's first field: the first named one, else the first).
        params = [c for c in ch if isinstance(c, tuple)]
        if not params:
            return "NORECV"
        return next((t for named, t in params if named), params[0][1])

    def func_decl(self, ch: list[Any]) -> tuple[Any, ...]:
        recv = ch[0] if isinstance(ch[0], tuple) else None
        name = next(c for c in ch if isinstance(c, Token) and c.type in ("NAME", "BLANK"))
        return ("func", recv, str(name), "TPARAMS" in ch, ch[-1] == "BODY")

    def other_decl(self, ch: list[Any]) -> tuple[Any, ...]:
        return ("other",)

    def import_decl(self, ch: list[Any]) -> tuple[Any, ...]:
        return ("import",)

    def package_clause(self, ch: list[Any]) -> tuple[Any, ...]:
        return ("package", str(ch[0]))

    def start(self, ch: list[Any]) -> list[Any]:
        return ch


class _SkeletonLexer(Lexer):
    """One-regex lexer built from the grammar's own terminals (about 2x lark's standard lexer).

    Keywords (string terminals that are also NAMEs) are found by looking NAME values up;
    other string terminals are tried longest first; whitespace (%ignore) is skipped.
    """

    __future_interface__ = 0

    def __init__(self, conf: Any) -> None:
        alts: list[str] = []
        self.keywords: dict[str, str] = {}
        strings = []
        regexps = []
        for t in conf.terminals:
            if t.pattern.type == "str":
                v = t.pattern.value
                if re.fullmatch(r"\w+", v) and v != "_":
                    self.keywords[v] = t.name
                else:
                    strings.append(t)
            else:
                regexps.append(t)
        regexps.sort(key=lambda t: t.name != "NAME")  # NAME first: it refuses a lone "_"
        for t in regexps:
            alts.append(f"(?P<{t.name}>{t.pattern.to_regexp()})")
        for t in sorted(strings, key=lambda t: -len(t.pattern.value)):
            alts.append(f"(?P<{t.name}>{re.escape(t.pattern.value)})")
        ignore = "|".join(conf.terminals_by_name[n].pattern.to_regexp() for n in conf.ignore)
        self.re = re.compile(f"(?:{ignore})|" + "|".join(alts) + "|(?P<_BAD>.)", re.DOTALL)

    def lex(self, data: str) -> Iterator[Token]:  # type: ignore[override]  # interface 0
        kw = self.keywords
        for m in self.re.finditer(data):
            kind = m.lastgroup
            if kind is None:
                continue
            v = m.group()
            if kind == "NAME":
                kind = kw.get(v, "NAME")
            elif kind == "_BAD":
                raise ScanError(f"unexpected character {v!r} at {m.start()} of the skeleton")
            yield Token(kind, v, m.start())


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("go_toplevel.lark")).read_text()
    return Lark(grammar, parser="lalr", lexer=_SkeletonLexer, transformer=_TopLevel(),
                maybe_placeholders=False)


# --------------------------------------------------------------------------------------------
# the pre-scan

_LINE_DIRECTIVE_RE = re.compile(r"^//line (.*?):(\d+)(?::\d+)?[ \t]*$|/\*line (.*?):(\d+)(?::\d+)?\*/",
                                re.MULTILINE)


def _line_directives(text: str, masked: str) -> list[tuple[int, str, int]]:
    """(raw line from which it applies, filename, line number there), for real directives."""
    out = []
    for m in _LINE_DIRECTIVE_RE.finditer(text):
        p = m.start()
        if masked[p] != " ":  # inside a string, not a comment
            continue
        raw_line = text.count("\n", 0, p) + 1
        if m.group(1) is not None:
            out.append((raw_line + 1, m.group(1), int(m.group(2))))
        else:
            out.append((raw_line, m.group(3), int(m.group(4))))
    return out


def _chunk_spans(masked: str, func_kw: list[int] | None = None) -> list[tuple[int, str]]:
    """(start, keyword) of every top-level declaration, package clause first.

    FUNC_KW, if given, receives the position of every `func` keyword (closure counting).
    """
    starts: list[tuple[int, str]] = []
    depth = 0
    prev = 0
    for m in _KW_RE.finditer(masked):
        p = m.start()
        if p and _is_word_char(masked[p - 1]):
            continue
        depth += _brace_balance(masked, prev, p)
        prev = p
        if func_kw is not None and masked[p] == "f":
            func_kw.append(p)
        if depth == 0 and _starts_decl(masked, p):
            starts.append((p, m.group()))
    return starts


def _match_group(masked: str, it: Any, open_ch: str) -> int:
    """Walk bracket events from IT after an opener; return the position of its closer."""
    depth = 1
    for m in it:
        c = m.group()
        if c in _CLOSERS:
            depth -= 1
            if depth == 0:
                return m.start()
        else:
            depth += 1
    raise ScanError("unbalanced brackets")


def _prev_word(masked: str, start: int, pos: int) -> str:
    s = masked[start:pos].rstrip()
    m = re.search(r"\w+\Z", s)
    return m.group() if m else ""


def _func_skeleton(masked: str, s: int, e: int) -> tuple[str, tuple[int, int] | None]:
    """Skeleton of the func declaration masked[s:e] and its body span (open, close)."""
    out: list[str] = []
    last = s
    body = None
    seen_params = False
    it = _BR_RE.finditer(masked, s, e)
    for m in it:
        o = m.start()
        c = m.group()
        if c in _CLOSERS:
            raise ScanError(f"unexpected {c!r} in a func header")
        if c == "{" and _prev_word(masked, last, o) not in ("interface", "struct"):
            close = masked.rfind("}", o, e)
            out.append(masked[last:o])
            out.append(" {@}")
            body = (o, close)
            last = close + 1
            break
        close = _match_group(masked, it, c)
        between = masked[last:o]
        out.append(between)
        if not seen_params and c == "(" and between.strip() != "func":
            seen_params = True
        if seen_params:
            out.append(f" {c}@{_OPEN[c]} ")
        else:  # receiver or type parameters: verbatim
            out.append(masked[o:close + 1])
        last = close + 1
    tail = masked[last:e]
    if body is not None and tail.strip(" \t\r\n;"):
        raise ScanError("text after a function body")
    out.append(tail.rstrip(" \t\r\n;"))
    return "".join(out), body


def _other_skeleton(masked: str, s: int, e: int, verbatim: bool) -> str:
    if verbatim:  # import declarations: small, keep every token
        return masked[s:e].rstrip(" \t\r\n;")
    out: list[str] = []
    last = s
    it = _BR_RE.finditer(masked, s, e)
    budget = _GROUP_BUDGET
    for m in it:
        o = m.start()
        c = m.group()
        if c in _CLOSERS:
            raise ScanError(f"unexpected {c!r} in a declaration")
        out.append(masked[last:o])
        depth = 1
        close = -1
        for m2 in it:
            budget -= 1
            if m2.group() in _CLOSERS:
                depth -= 1
                if depth == 0:
                    close = m2.start()
                    break
            else:
                depth += 1
            if budget <= 0:
                break
        if close < 0:  # long: the rest of the declaration is balanced (depth 0 at both ends)
            out.append(" @@")
            return "".join(out)
        out.append(f" {c}@{_OPEN[c]} ")
        last = close + 1
    out.append(masked[last:e].rstrip(" \t\r\n;"))
    return "".join(out)


def scan_source(text: str, path: str = "<src>") -> tuple[FileScan, list[FuncUnit]]:
    """Scan one file's text; raise ScanError if it is not valid top-level Go."""
    if text.startswith("\ufeff"):
        text = " " + text[1:]
    masked = mask(text)
    func_kw: list[int] = []
    spans = _chunk_spans(masked, func_kw)
    if not spans or spans[0][1] != "package":
        raise ScanError(f"{path}: no package clause first")
    ends = [p for p, _ in spans[1:]] + [len(masked)]
    pieces: list[str] = []
    funcs: list[tuple[int, tuple[int, int] | None]] = []
    func_chars = other_chars = n_types = 0
    imports: list[str] = []
    for (s, kw), e in zip(spans, ends):
        if kw == "func":
            sk, body = _func_skeleton(masked, s, e)
            funcs.append((s, body))
            func_chars += e - s
        else:
            sk = _other_skeleton(masked, s, e, kw in ("import", "package"))
            if kw == "import":
                for m in re.finditer(r'"[^"\n]*"|`[^`]*`', masked[s:e]):
                    imports.append(text[s + m.start() + 1:s + m.end() - 1])
            if kw != "package":
                other_chars += e - s
            if kw == "type":
                n_types += 1
        pieces.append(sk)
    skeleton = ";\n".join(pieces)
    try:
        decls: list[Any] = _parser().parse(skeleton)  # type: ignore[assignment]
    except Exception as exc:  # lark's errors
        raise ScanError(f"{path}: {type(exc).__name__}: {str(exc)[:300]}") from exc
    if len(decls) != len(spans):
        raise ScanError(f"{path}: {len(decls)} declarations parsed, {len(spans)} cut")

    # measures
    directives = (_line_directives(text, masked)
                  if ("//line " in text or "/*line " in text) else [])
    units: list[FuncUnit] = []
    line = 1
    lpos = 0
    fi = 0
    for d in decls:
        if d[0] != "func":
            continue
        _kind, recv, name, tparams, has_body = d
        s, body = funcs[fi]
        fi += 1
        line += masked.count("\n", lpos, s)
        lpos = s
        col = s - (masked.rfind("\n", 0, s) + 1) + 1
        u = FuncUnit(file=path, line=line, col=col, receiver=recv[1] if recv else None,
                     name=name, is_generic=bool(tparams or (recv and recv[2])),
                     recv_pointer=bool(recv and recv[0]), has_body=has_body)
        if has_body and body is not None:
            o, c = body
            e1 = c + 1
            cnt = masked.count
            u.body_chars = e1 - o
            nl = cnt("\n", o, e1)
            u.body_lines = nl + 1
            u.end_line = line + masked.count("\n", s, o) + nl
            u.code_chars = (e1 - o - cnt(" ", o, e1) - cnt("\t", o, e1) - nl - cnt("\r", o, e1))
            u.n_parens = cnt("(", o, e1)
            u.n_blocks = cnt("{", o, e1)
            lo = bisect.bisect_left(func_kw, o)
            hi = bisect.bisect_left(func_kw, c)
            n = 0
            for k in func_kw[lo:hi]:
                eol = masked.find("\n", k, c)
                if "{" in masked[k:eol if eol >= 0 else c]:
                    n += 1
            u.n_closures = n
        else:
            u.end_line = line
        if directives:
            u.pos = _adjusted(directives, u.line)
        units.append(u)
    fs = FileScan(path=path, package=decls[0][1], imports=imports, chars=len(text),
                  lines=text.count("\n") + (0 if text.endswith("\n") else 1),
                  func_chars=func_chars, other_chars=other_chars, n_decls=len(decls),
                  n_type_decls=n_types)
    return fs, units


def _adjusted(directives: list[tuple[int, str, int]], line: int) -> str:
    best = None
    for from_line, fname, n in directives:
        if from_line <= line:
            best = (from_line, fname, n)
        else:
            break
    if best is None:
        return ""
    from_line, fname, n = best
    return f"{fname}:{n + line - from_line}"


def read_source(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="surrogateescape")


# A line that opens a function's body: `func` at its start, `{` at its end (gofmt's form).
_FUNC_LINE_RE = re.compile(rb"^func [^\n]*\{[ \t]*$", re.MULTILINE)


def func_lines(paths: Sequence[str | os.PathLike[str]]) -> int:
    """How many lines of PATHS open a function's body, by one regular expression over the
    bytes (service/ec2's 6.8 MB: ~40 ms, against 0.9 s for `scan_files`): about a lower
    bound of the package's functions, for a decision the scan would not change
    (decide.decided_unscanned)."""
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            n += len(_FUNC_LINE_RE.findall(f.read()))
    return n


def scan_files(paths: Sequence[str | os.PathLike[str]]) -> PackageScan:
    """Scan the .go files of one package (the files of one compile, in its order)."""
    t0 = time.perf_counter()
    ps = PackageScan()
    for p in paths:
        fs, units = scan_source(read_source(p), str(p))
        ps.files.append(fs)
        ps.units.extend(units)
    if ps.files:
        ps.package = ps.files[0].package
    _name_units(ps.units)
    ps.seconds = time.perf_counter() - t0
    return ps


def _name_units(units: list[FuncUnit]) -> None:
    """Index and compiler-style symbol names (init functions are init.0, init.1, ...)."""
    n_init = 0
    for i, u in enumerate(units):
        u.index = i
        if u.receiver is None:
            if u.name == "init":
                u.symbol = f"init.{n_init}"
                n_init += 1
            else:
                u.symbol = u.name
        else:
            t = u.receiver + ("[...]" if u.is_generic else "")
            u.symbol = f"(*{t}).{u.name}" if u.recv_pointer else f"{t}.{u.name}"


def scan_package_dir(directory: str | os.PathLike[str], tags: Sequence[str] = (),
                     env: dict[str, str] | None = None) -> PackageScan:
    """Scan the package in DIRECTORY, with the files `go list` selects for TAGS."""
    import json

    from fgo import toolchain
    args = ["list", "-json"]
    if tags:
        args.append("-tags=" + ",".join(tags))
    proc = toolchain.run_go([*args, "."], cwd=str(directory), env=toolchain.go_env(env))
    info = json.loads(proc.stdout)
    d = info["Dir"]
    names = list(info.get("GoFiles", [])) + list(info.get("CgoFiles", []))
    return scan_files([os.path.join(d, n) for n in names])


def main(argv: list[str]) -> int:  # pragma: no cover - measurement CLI
    """python -m fgo.planner.gosource DIR|FILE.go... : scan (non-test .go files of DIR) and
    print the package summary and the planner's time (best of 3, wall and CPU)."""
    import sys

    files: list[str] = []
    for a in argv:
        if os.path.isdir(a):
            files += sorted(os.path.join(a, n) for n in os.listdir(a)
                            if n.endswith(".go") and not n.endswith("_test.go"))
        else:
            files.append(a)
    if not files:
        print("usage: python -m fgo.planner.gosource DIR|FILE.go...", file=sys.stderr)
        return 2
    t = time.perf_counter()
    _parser()
    load = time.perf_counter() - t
    runs = []
    for _ in range(3):
        c, w = time.process_time(), time.perf_counter()
        ps = scan_files(files)
        runs.append((time.perf_counter() - w, time.process_time() - c))
    n_gen = sum(u.is_generic for u in ps.units)
    print(f"package {ps.package}: {len(ps.files)} files, {ps.total_lines} lines, "
          f"{ps.total_chars} chars, {len(ps.units)} funcs ({n_gen} generic, "
          f"{sum(u.n_closures for u in ps.units)} closures)")
    print(f"scan: best wall {min(r[0] for r in runs):.3f} s, best CPU "
          f"{min(r[1] for r in runs):.3f} s (grammar load {load:.3f} s, once per process)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main(sys.argv[1:]))
