"""What verification checks, as pure functions: no I/O, no threads.

A remote compile is checked by compiling it again and comparing the bytes: on the head
(the reference: a worker's first check, every split, and the arbiter of a disagreement),
or on another worker when the head has no core free (a cross-check), so that the rate holds
whatever the head's load.

Which compiles: each worker's first check comes at a secret-random one of its first
FIRST_WITHIN compiles (never "its first small one": a worker must not be able to tell the
checked compile from the others); after that, each compile is sampled with a probability
drawn from a secret the build keeps (an HMAC of the compile's key under a per-build random
key), never from anything in the worker's argv.

How many: a worker wrong on a share q of its compiles escapes c independent checks with
probability (1 - q)^c, so catching it with confidence p needs
    c >= ln(1 - p) / ln(1 - q)        (p = 0.99, q = 0.05: c = 90 checks of that worker)
and a worker doing n compiles in the build needs a sampling rate of c / n. `sample_rate`
raises the floor rate (--verify-rate) to that when a catch target is set (--verify-catch)
and the build's size is known; `catch_probability` says what a build's checks achieved.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math

FIRST_WITHIN = 4      # a worker's first check: one of its first this many compiles
CONFIDENCE = 0.99     # the catch target's confidence (--verify-catch gives q)


def checks_needed(q: float, confidence: float = CONFIDENCE) -> int:
    """Checks of one worker that catch it with CONFIDENCE when a share Q of its compiles
    is wrong (each check an independent draw)."""
    if q <= 0:
        return 0
    if q >= 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log(1 - q))


def catch_probability(q: float, checks: int) -> float:
    """The probability that CHECKS independent checks catch a worker wrong on a share Q."""
    return 1 - (1 - q) ** checks


def sample_rate(floor: float, q: float | None, expected_per_worker: float | None,
                confidence: float = CONFIDENCE) -> float:
    """The share of a worker's compiles to check: the FLOOR, raised to meet a catch target
    Q with CONFIDENCE for the worker's EXPECTED_PER_WORKER compiles; all of them while that
    is unknown (a first build: a promise of 99% is not kept by guessing)."""
    if not q:
        return floor
    if not expected_per_worker:
        return 1.0
    return max(floor, min(1.0, checks_needed(q, confidence) / expected_per_worker))


def secret_draw(secret: bytes, key: str) -> float:
    """A number in [0, 1) that only the holder of SECRET can compute from KEY."""
    digest = hmac.new(secret, key.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def first_check_at(secret: bytes, worker: str) -> int:
    """Which of WORKER's first FIRST_WITHIN compiles (1-based) its first check is."""
    return 1 + int(secret_draw(secret, f"first {worker}") * FIRST_WITHIN)


KEEPING_RATE = "keeping the rate"


def check_reason(first_pending: bool, nth: int, first_at: int, drawn: float, rate: float,
                 checked: int = 0, compiles: int = 0) -> str | None:
    """Why a worker's NTH compile is checked, or None: its first check is still pending
    and this is (or is past) the secret position FIRST_AT; or its secret DRAWN number
    falls under RATE; or the build has CHECKED fewer than RATE of the COMPILES it has had
    back so far (this one included): a random sample keeps its rate on average only, and
    every build must check its share (measured: 2.1% of one etcd build at 3%)."""
    if first_pending and nth >= first_at:
        return "first of worker"
    if drawn < rate:
        return "sampled"
    if checked < math.ceil(rate * compiles - 1e-9):
        return KEEPING_RATE
    return None


AT_DISPATCH_S = 4.0   # a compile expected to take this long is drawn when it is sent


def dispatch_reason(expected_s: float, drawn: float, rate: float, checked: int,
                    compiles: int) -> str | None:
    """Why a compile expected to take EXPECTED_S is checked from the moment it is sent
    (its reference compile on the head beside the remote one), or None: decided when it
    comes back, as any. The draw is the one its result would get (keyed on its inputs, so
    no worker can tell), and the rate is kept over CHECKED of COMPILES (this one and the
    checks already drawn at dispatch counted). A long compile checked only once it is back
    puts its whole length again before the link: aws-sdk-go's ec2, 16.7 s."""
    if expected_s < AT_DISPATCH_S:
        return None
    return check_reason(False, 0, 1, drawn, rate, checked, compiles)


def where_to_check(reason: str, head_free: bool, other_workers: bool) -> str:
    """"head" or "cross": a worker's first check and a split's are the head's own compile
    (the reference); a sample goes to another worker while the head has no core free."""
    if reason in ("sampled", KEEPING_RATE) and not head_free and other_workers:
        return "cross"
    return "head"


def split_needs_check(mode: str, verified: bool, drawn: float, rate: float) -> str | None:
    """Why a split is compiled stock on the head, or None. --verify-splits: first (what
    the ledger has not seen, and a sample of what it has: a key in the ledger proves what
    matched once, not what a worker returns today), always, or off."""
    if mode == "always":
        return "always"
    if mode == "first":
        if not verified:
            return "first of inputs"
        if drawn < rate:
            return "sampled"
    return None


def split_key(series: str, package: str, inputs_id: str, k: int) -> str:
    return f"{series[:12]} {package} {inputs_id[:20]} K={k}"


def inputs_id(buildid: str, input_shas: dict[str, str]) -> str:
    """What identifies a compile's inputs across builds: go's action ID (the first half of
    -buildid: a hash of the sources, the imports' content IDs, the flags and the compiler),
    else a hash of the input files. Paths alone would not do: go build's work directory,
    which the importcfg names, is new in every build."""
    return buildid.split("/")[0] or inputs_hash(input_shas)


def inputs_hash(input_shas: dict[str, str]) -> str:
    """One hash over a compile's inputs (path -> sha256)."""
    h = hashlib.sha256()
    for path in sorted(input_shas):
        h.update(f"{path}\0{input_shas[path]}\n".encode())
    return h.hexdigest()


def action_id_prefix(buildid_flag: str) -> str | None:
    """The hex prefix of go's action ID from a compile's `-buildid ACTION/CONTENT` value
    (cmd/internal/buildid.HashToString: base64 of the action hash's first 15 bytes)."""
    action = buildid_flag.split("/")[0]
    if len(action) != 20:
        return None
    try:
        return base64.b64decode(action.replace("-", "+").replace("_", "/")).hex()
    except ValueError:
        return None


def differing_outputs(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    """The output paths whose bytes differ (or that only one side has)."""
    return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))


def arbiter(producer_matches: bool, checker_matches: bool) -> list[str]:
    """Who is wrong after a cross-check disagreed, given whether the producer's and the
    checker's outputs match the head's own: "producer", "checker", or both."""
    wrong = []
    if not producer_matches:
        wrong.append("producer")
    if not checker_matches:
        wrong.append("checker")
    return wrong
