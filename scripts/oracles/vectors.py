"""The command line the oracle scripts share: write the committed vectors, or with --check
compare them with a fresh derivation (what ./scripts/test runs)."""
import argparse
import math
import re
import sys
from pathlib import Path

# A number as the vector files write them (Python's repr of a float, or an integer).
NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

# How far a fresh derivation may stray from the committed vectors: numpy's vectorised exp and
# log (and so scipy and vollib above them) differ in the last bits between CPUs (AVX-512 and
# AVX2 kernels), so a machine other than the one that wrote the file can land an ulp or two away.
# Far below every tolerance the Rust tests hold the vectors to.
RELATIVE_TOLERANCE = 1e-13


def same_within_ulps(committed: str, fresh: str) -> tuple[bool, float]:
    """Whether two renderings agree: the same text between numbers, numbers within
    RELATIVE_TOLERANCE; and the largest relative difference seen."""
    if NUMBER.sub("#", committed) != NUMBER.sub("#", fresh):
        return False, math.inf
    worst = 0.0
    for a, b in zip(NUMBER.findall(committed), NUMBER.findall(fresh)):
        if a == b:
            continue
        x, y = float(a), float(b)
        scale = max(abs(x), abs(y))
        difference = abs(x - y) / scale if scale > 0 else 0.0
        worst = max(worst, difference)
        if not math.isclose(x, y, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-300):
            return False, difference
    return True, worst


def main(description: str, out: Path, render, cases: int, oracle: str) -> int:
    """Writes `render()` to `out`, or with --check compares it with what is committed there."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()
    text = render()
    if args.check:
        committed = out.read_text() if out.exists() else ""
        same, worst = same_within_ulps(committed, text)
        if not same:
            print(f"{out} differs from the {oracle} oracle (relative difference {worst:.3g}); regenerate with {sys.argv[0]}", file=sys.stderr)
            return 1
        exact = "exactly" if committed == text else f"within {worst:.2g} relative (this CPU's last bits)"
        print(f"{out.name}: {cases} cases match the {oracle} oracle {exact}")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {cases} cases to {out}")
    return 0
