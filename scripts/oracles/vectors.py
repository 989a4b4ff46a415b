"""The command line the oracle scripts share: write the committed vectors, or with --check
compare them with a fresh derivation (what ./scripts/test runs)."""
import argparse
import sys
from pathlib import Path


def main(description: str, out: Path, render, cases: int, oracle: str) -> int:
    """Writes `render()` to `out`, or with --check compares it with what is committed there."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()
    text = render()
    if args.check:
        committed = out.read_text() if out.exists() else ""
        if committed != text:
            print(f"{out} differs from the {oracle} oracle; regenerate with {sys.argv[0]}", file=sys.stderr)
            return 1
        print(f"{out.name}: {cases} cases match the {oracle} oracle")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {cases} cases to {out}")
    return 0
