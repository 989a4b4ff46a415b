"""Shared fixtures: the repository root, the `solvent` command, the shipped examples."""

from __future__ import annotations

import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import pytest

ROOT = Path(os.environ.get("SOLVENT_ROOT", Path(__file__).resolve().parents[2]))
BIN = Path(os.environ.get("SOLVENT_BIN", ROOT / "target" / "debug" / "solvent"))
EXAMPLES = ROOT / "examples"
MARKET = EXAMPLES / "market-2026-01-06.json"

# Every shipped portfolio example (the market file and the event stream are not portfolios).
PORTFOLIOS = sorted(
    path for path in EXAMPLES.glob("*.json") if not path.name.startswith("market-")
)


def run_cli(args: Sequence[str]) -> Tuple[int, str, str]:
    """Runs the `solvent` command from the repository root: exit code, stdout, stderr."""
    done = subprocess.run(
        [str(BIN), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout, done.stderr


# Keys whose values are names, never figures, however they look.
NAME_KEYS = {"account", "instrument", "name", "settlement", "settlement_asset", "timestamp", "detail",
             "reason", "refusal", "state", "mode", "rule", "mark_source", "underlying", "asset"}
PLAIN_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def same_figures(cli: Any, ours: Any, where: str = "") -> None:
    """Asserts that the command's JSON (money as decimal strings) and the package's dict (money
    as Decimal) hold the same figures and nothing else, and that no figure stayed text."""
    key = where.rsplit(".", 1)[-1].split("[", 1)[0]
    if isinstance(ours, str) and PLAIN_DECIMAL.match(ours) and key not in NAME_KEYS:
        raise AssertionError(f"{where}: the figure {ours!r} is text, not a Decimal")
    if isinstance(ours, Decimal):
        assert isinstance(cli, str), f"{where}: {cli!r} against Decimal {ours}"
        assert Decimal(cli) == ours, f"{where}: {cli} != {ours}"
    elif isinstance(ours, dict):
        assert isinstance(cli, dict) and cli.keys() == ours.keys(), f"{where}: keys differ"
        for key in cli:
            same_figures(cli[key], ours[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert isinstance(cli, list) and len(cli) == len(ours), f"{where}: lengths differ"
        for index, (a, b) in enumerate(zip(cli, ours)):
            same_figures(a, b, f"{where}[{index}]")
    else:
        assert cli == ours, f"{where}: {cli!r} != {ours!r}"


def load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def cli_available() -> None:
    if not BIN.exists():
        pytest.fail(f"{BIN} is missing: build it with `cargo build -p solvent-cli`")


def venue_names() -> List[str]:
    import solvent

    return solvent.Venue.shipped()


def pytest_configure(config: pytest.Config) -> None:
    # The shipped examples leave marks out on purpose (the index or the surface stands in), so
    # most calls name a default as a solvent.InputWarning; the tests that are about those
    # warnings catch them with pytest.warns, which sees them whatever this filter says.
    config.addinivalue_line("filterwarnings", "ignore::solvent.InputWarning")
