"""A long fuzz run: mutated specs through the compile API, and the ones that
compile through both generators' source emission (plus Python's `compile()`
of the emitted text). Every input must compile or be refused with archc's own
diagnostic (SpecError, or a backend's BackendError), within a time limit.

    python benchmarks/fuzz_long.py [-n 20000] [--seed 1] [--limit 10] [--out DIR]

Prints N inputs, how many compiled / were refused, the tracebacks (any other
exception, grouped by type and place, each with a minimised input), the hangs
(inputs over --limit seconds), the runs over 2 s and the longest time per
input. Exit status 1 if there was a traceback or a hang.

The mutation classes are those that found issue 11's defects: byte edits,
huge integers, deep nesting of groups and brackets, long lines, token
duplication, plus token deletion/swaps, splices of lines from other specs,
and names and numbers replaced by interesting ones. tests/test_fuzz.py runs
the same mutations in CI (a small, derandomised profile).
"""

from __future__ import annotations

import argparse
import pathlib
import random
import re
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from anywhere: use this checkout's archc
    sys.path.insert(0, str(ROOT))

from archc.diagnostics import SpecError
from archc.pipeline import compile_spec
from backends import get
from backends.common import BackendError

SPECS = ROOT / "specs"
FUZZ_PATH = str(SPECS / "fuzz.cnn")  # beside stdlib.cnn, so `include` resolves

# A token: a comment, a quoted path, a word, a number, a two-character operator, a sign.
TOKEN = re.compile(
    r'#[^\n]*|"[^"\n]*"|[^\W\d]\w*|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?'
    r"|//|[=!<>]=|\\\*|\S"
)
NUMBER = re.compile(r"[0-9]+")
WORDS = (
    "C",
    "B",
    "A",
    "P",
    "D",
    "Dense",
    "Flatten",
    "GAP",
    "LRN",
    "ZeroPad",
    "BN",
    "FC",
    "identity",
    "relu",
    "same",
    "valid",
    "max",
    "avg",
    "gavg",
    "nobias",
    "None",
    "Yes",
    "x",
    "s",
    "p",
    "if",
    "else",
    "as",
    "concat",
    "add",
    "block",
    "train",
    "model",
    "include",
    "input",
    "ConvBNRelu",
    "InceptionBlk",
    "ResnetBlock",
    "ch",
    "k",
    "n",
    "filters",
    "self",
    "forward",
    "layers",
    "keras",
    "F",
    "torch",
    "lambda",
    "class",
    "print",
    "__init__",
    "Layers",
    "Ops",
    "to",
    "training",
    "x0",
    "s0",
    "p0",
    "x2",
    "核",
    "步长",
    "激活",
    "Dropout",
    "leaky_relu",
    "softmax",
    "sgd",
    "adam",
    "schedule",
)
NUMBERS = (
    "0",
    "1",
    "2",
    "3",
    "7",
    "64",
    "1000",
    "-1",
    "0.5",
    "1e-3",
    "2147483647",
    "2147483648",
    "4294967296",
    "99999999999",
    "1e999",
    "0" * 40 + "5",
    "1" + "0" * 400,
)
CHARS = '{}()[],:=*x/%-+#|"\n \t.0123456789aBsp\\，：输'


def _tokens(text: str) -> list[re.Match]:
    return list(TOKEN.finditer(text))


def _span_edit(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def byte_edit(rng: random.Random, text: str, corpus: list[str]) -> str:
    i = rng.randrange(len(text) + 1)
    op = rng.choice(("insert", "delete", "replace"))
    payload = "".join(rng.choice(CHARS) for _ in range(rng.randint(1, 3)))
    if op == "insert":
        return text[:i] + payload + text[i:]
    if op == "delete":
        return text[:i] + text[i + rng.randint(1, 3) :]
    return text[:i] + payload + text[i + len(payload) :]


def huge_integer(rng: random.Random, text: str, corpus: list[str]) -> str:
    numbers = list(NUMBER.finditer(text))
    big = rng.choice(
        [
            "9" * rng.randint(11, 6000),
            "0" * rng.randint(1, 5000) + "1",
            "1" + "0" * rng.randint(9, 5000),
            "2147483648",
            "4294967296",
            "1e" + "9" * rng.randint(3, 400),
            "9" * rng.randint(300, 400) + ".5",
        ]
    )
    if not numbers:
        return text + " " + big
    m = rng.choice(numbers)
    return _span_edit(text, m.start(), m.end(), big)


def deep_nesting(rng: random.Random, text: str, corpus: list[str]) -> str:
    toks = [t for t in _tokens(text) if not t.group().startswith("#")]
    if not toks:
        return text
    a = rng.randrange(len(toks))
    b = min(len(toks) - 1, a + rng.randint(0, 12))
    start, end = toks[a].start(), toks[b].end()
    depth = rng.choice((2, 8, 30, 50, 63, 64, 65, 80))
    open_, close = rng.choice(
        (
            ("{", "} x2"),
            ("{", "}"),
            ("(", ")"),
            ("[", "]"),
            ("add { ", " | }"),
            ("{", "} x1000"),
            ("if 1 { ", " }"),
            ("{", "} as g"),
        )
    )
    return text[:start] + open_ * depth + text[start:end] + close * depth + text[end:]


def long_line(rng: random.Random, text: str, corpus: list[str]) -> str:
    lines = text.split("\n")
    how = rng.randrange(3)
    if how == 0:  # everything on one line (comments then swallow the rest)
        return " ".join(lines)
    i = rng.randrange(len(lines))
    if how == 1:  # one line repeated on itself
        lines[i] = " ".join([lines[i]] * rng.choice((10, 100, 1000, 5000)))
    else:  # a line of padding
        lines[i] = lines[i] + " " * rng.choice((1000, 100_000, 900_000))
    return "\n".join(lines)


def token_duplication(rng: random.Random, text: str, corpus: list[str]) -> str:
    toks = _tokens(text)
    if not toks:
        return text
    a = rng.randrange(len(toks))
    b = min(len(toks) - 1, a + rng.randint(0, 5))
    start, end = toks[a].start(), toks[b].end()
    k = rng.choice((2, 3, 10, 100, 1000, 20_000))
    sep = rng.choice(("", " ", "\n"))
    return text[:end] + (sep + text[start:end]) * (k - 1) + text[end:]


def token_delete_or_swap(rng: random.Random, text: str, corpus: list[str]) -> str:
    toks = _tokens(text)
    if len(toks) < 2:
        return text
    a, b = sorted(rng.sample(range(len(toks)), 2))
    ta, tb = toks[a], toks[b]
    if rng.random() < 0.5:
        return _span_edit(text, ta.start(), ta.end(), "")
    return (
        text[: ta.start()]
        + tb.group()
        + text[ta.end() : tb.start()]
        + ta.group()
        + text[tb.end() :]
    )


def splice(rng: random.Random, text: str, corpus: list[str]) -> str:
    donor = rng.choice(corpus).split("\n")
    piece = "\n".join(donor[rng.randrange(len(donor)) :][: rng.randint(1, 4)])
    lines = text.split("\n")
    i = rng.randrange(len(lines) + 1)
    return "\n".join(lines[:i] + [piece] + lines[i:])


def replace_word(rng: random.Random, text: str, corpus: list[str]) -> str:
    toks = [t for t in _tokens(text) if t.group()[0].isalpha()]
    if not toks:
        return text
    m = rng.choice(toks)
    return _span_edit(text, m.start(), m.end(), rng.choice(WORDS))


def replace_number(rng: random.Random, text: str, corpus: list[str]) -> str:
    numbers = list(NUMBER.finditer(text))
    if not numbers:
        return text
    m = rng.choice(numbers)
    return _span_edit(text, m.start(), m.end(), rng.choice(NUMBERS))


MUTATORS = (
    byte_edit,
    huge_integer,
    deep_nesting,
    long_line,
    token_duplication,
    token_delete_or_swap,
    splice,
    replace_word,
    replace_number,
)


def corpus() -> list[str]:
    files = sorted(SPECS.glob("*.cnn")) + sorted((ROOT / "tests" / "repros").glob("*.cnn"))
    return [p.read_text(encoding="utf-8") for p in files]


def mutate(rng: random.Random, texts: list[str]) -> tuple[str, list[str]]:
    text = rng.choice(texts)
    names = []
    for _ in range(rng.randint(1, 4)):
        fn = rng.choice(MUTATORS)
        names.append(fn.__name__)
        text = fn(rng, text, texts)
        if len(text) > 1_200_000:  # stay near the file limit, not far beyond it
            text = text[:1_200_000]
    return text, names


# ---- running one input ---------------------------------------------------------


class Hang(BaseException):
    """The per-input time limit ran out (a BaseException: no `except Exception` eats it)."""


def _alarm(signum, frame):
    raise Hang()


def run_one(text: str, limit: float) -> tuple[str, float, BaseException | None]:
    """-> (outcome, seconds, exception): outcome is compiled, refused, backend-refused,
    traceback or hang."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    t = time.perf_counter()
    try:
        try:
            model = compile_spec(FUZZ_PATH, text)
        except SpecError as e:
            for d in e.diagnostics:  # diagnosis is part of the run
                d.render()
            assert e.diagnostics and all(d.code.startswith("E") for d in e.diagnostics)
            return "refused", time.perf_counter() - t, None
        outcome = "compiled"
        for backend in ("keras", "torch"):
            try:
                source = get(backend).generate(model)
            except BackendError:
                outcome = "backend-refused"
                continue
            compile(source, f"<{backend} source>", "exec")
        return outcome, time.perf_counter() - t, None
    except Hang as e:
        return "hang", time.perf_counter() - t, e
    except Exception as e:  # noqa: BLE001 - the point is to catch anything
        return "traceback", time.perf_counter() - t, e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def signature(e: BaseException) -> str:
    """Exception type and the innermost frame in archc/ or backends/."""
    frames = traceback.extract_tb(e.__traceback__)
    own = [f for f in frames if "/archc/" in f.filename or "/backends/" in f.filename]
    where = own[-1] if own else (frames[-1] if frames else None)
    place = f"{pathlib.Path(where.filename).name}:{where.lineno} ({where.name})" if where else "?"
    return f"{type(e).__name__} at {place}"


def minimise(text: str, sig: str, limit: float, budget: int = 400) -> str:
    """Delta debugging: drop lines, then characters, while the same failure remains."""

    def fails(t: str) -> bool:
        outcome, _, e = run_one(t, limit)
        return outcome == "traceback" and signature(e) == sig

    tries = 0
    for unit in ("\n", ""):
        parts = text.split("\n") if unit else list(text)
        n = 2
        while len(parts) >= 2 and tries < budget:
            chunk = max(1, len(parts) // n)
            reduced = False
            for i in range(0, len(parts), chunk):
                candidate = parts[:i] + parts[i + chunk :]
                tries += 1
                if candidate and fails(unit.join(candidate)):
                    parts, n, reduced = candidate, max(n - 1, 2), True
                    break
                if tries >= budget:
                    break
            if not reduced:
                if chunk == 1:
                    break
                n = min(len(parts), n * 2)
        text = unit.join(parts)
    return text


@dataclass
class Report:
    n: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_mutator: Counter = field(default_factory=Counter)
    tracebacks: dict[str, list] = field(default_factory=dict)  # signature -> [count, text, muts]
    hangs: list[tuple[str, list[str]]] = field(default_factory=list)
    over_2s: int = 0
    max_time: float = 0.0
    max_input: tuple[list[str], int] = ([], 0)

    def summary(self) -> str:
        lines = [
            f"inputs: {self.n:,}",
            "outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items())),
            (
                f"tracebacks: {sum(v[0] for v in self.tracebacks.values()):,} "
                f"({len(self.tracebacks)} distinct)"
            ),
            f"hangs: {len(self.hangs)}",
            f"runs over 2 s: {self.over_2s}",
            (
                f"max time per input: {self.max_time:.2f} s (mutations "
                f"{'+'.join(self.max_input[0])}, {self.max_input[1]:,} bytes)"
            ),
        ]
        for sig, (count, text, muts) in sorted(self.tracebacks.items()):
            lines.append(f"  {count:>5} x {sig}  [{'+'.join(muts)}]")
        return "\n".join(lines)


def run(
    n: int, seed: int = 1, limit: float = 10.0, minimise_budget: int = 400, progress: bool = False
) -> Report:
    rng = random.Random(seed)
    texts = corpus()
    report = Report()
    for i in range(n):
        text, muts = mutate(rng, texts)
        outcome, seconds, exc = run_one(text, limit)
        report.n += 1
        report.outcomes[outcome] += 1
        if seconds > 2:
            report.over_2s += 1
        if seconds > report.max_time:
            report.max_time, report.max_input = seconds, (muts, len(text.encode()))
        if outcome == "traceback":
            sig = signature(exc)
            entry = report.tracebacks.setdefault(sig, [0, text, muts])
            entry[0] += 1
        elif outcome == "hang":
            report.hangs.append((text, muts))
        if progress and (i + 1) % 1000 == 0:
            print(
                f"  {i + 1:,} inputs, {report.outcomes['traceback']} tracebacks, "
                f"{len(report.hangs)} hangs, {report.over_2s} over 2 s, max {report.max_time:.2f} s",
                flush=True,
            )
    for entry in report.tracebacks.values():
        entry[1] = (
            minimise(
                entry[1],
                next(s for s, e in report.tracebacks.items() if e is entry),
                limit,
                minimise_budget,
            )
            if minimise_budget
            else entry[1]
        )
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20_000, help="number of mutated inputs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=float, default=10.0, help="seconds per input: a hang")
    p.add_argument("--out", help="write each traceback's minimised input and each hang here")
    args = p.parse_args()
    t = time.perf_counter()
    report = run(args.n, args.seed, args.limit, progress=True)
    print(report.summary())
    print(f"wall time: {time.perf_counter() - t:.0f} s")
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for k, (sig, (count, text, muts)) in enumerate(sorted(report.tracebacks.items())):
            (out / f"traceback_{k}.cnn").write_text(f"# {sig}\n{text}", encoding="utf-8")
        for k, (text, muts) in enumerate(report.hangs):
            (out / f"hang_{k}.cnn").write_text(text, encoding="utf-8")
    return 1 if report.tracebacks or report.hangs else 0


if __name__ == "__main__":
    sys.exit(main())
