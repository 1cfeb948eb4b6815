"""Shared test helpers: a small fixture project on disk and a way to run the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CARDS = """\
- name: Ada Bell
  aliases: [Ada]
  description: A lighthouse keeper on a windy island.
  speaking_style: Brisk and salty.
  topics: [lighthouses, storms, ships]
- name: Ben Ortiz
  aliases: [Ben]
  description: A baker who gets up at three.
  speaking_style: Slow and warm.
  topics: [bread, ovens, mornings]
- name: Quinn
  aliases: [Interviewer, Q]
  role: interviewer
"""

ADA = [
    "The lamp turns every ten seconds and I count each one when the fog rolls in from the west.",
    "Storms arrive sideways here, salt on the windows, and the whole tower hums like a bottle.",
    "Ships used to signal back with three short flashes, a thank you from the dark water.",
    "My father kept this light for thirty years and never once let the wick go black.",
    "In winter the stairs ice over and I climb them with a rope tied around my waist.",
    "The keeper's log goes back to eighteen ninety, every storm written in brown ink.",
    "Gulls nest on the gallery rail and scream at me whenever I polish the lens.",
    "A trawler ran aground on the north reef in the year my daughter was born.",
    "Paraffin smells of my childhood, of my mother reading by the same yellow flame.",
    "Nobody visits between October and March except the supply boat and the postman.",
    "The foghorn needs oil on its bearings twice a month or it groans like a cow.",
    "I painted the tower red and white again last summer, one bucket a day.",
]
BEN = [
    "Bread wants patience, and the dough tells you when it is ready if you press it gently.",
    "The oven takes an hour to heat, so I light it at three while the street is asleep.",
    "Mornings smell of rye and caraway before the first customer knocks on the glass.",
    "My grandmother baked on a wood fire and burned exactly one loaf in forty years.",
    "Sourdough starter lives in a jar on the shelf and I feed it flour every evening.",
    "Croissants are a fight with butter, and the butter wins whenever the kitchen is warm.",
    "The mill up the valley grinds my flour on stones that are older than the church.",
    "Children press their noses on the window to watch the baguettes come out.",
    "Salt matters more than people think; too little and the crust tastes of cardboard.",
    "I sleep in the afternoon like a cat, with the radio on and the blinds down.",
    "Every Friday I bake challah for the widow next door, braided in six strands.",
    "Rain makes the dough slack, so on wet days I add a little less water.",
]


def tab_transcript(ada: list[str], ben: list[str]) -> str:
    """Six exchanges per persona; every sentence is used once, so no record repeats another."""
    lines = ["A SMALL FIXTURE — interview", "00:00"]
    for index in range(len(ada) // 2):
        lines.append(f"Interviewer\tWhat happened in part {index}?")
        lines.append(f"Ada\t{ada[2 * index]}")
        lines.append(f"\t{ada[2 * index + 1]}")
        lines.append(f"Q\tAnd for you, Ben, part {index}?")
        lines.append(f"Ben\t{ben[2 * index]} {ben[2 * index + 1]}")
    return "\n".join(lines) + "\n"


@dataclass
class Project:
    root: Path
    cards: Path
    transcripts: Path

    def build_args(self, out: str = "out", *extra: str) -> list[str]:
        return ["data", "build", "--transcripts", str(self.transcripts), "--personas", str(self.cards),
                "--out", str(self.root / out), *extra]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    cards = tmp_path / "cards.yaml"
    cards.write_text(CARDS, encoding="utf-8")
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    (transcripts / "one.txt").write_text(tab_transcript(ADA, BEN), encoding="utf-8")
    return Project(tmp_path, cards, transcripts)


def run_persona(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real command line (a fresh process: exit codes and stderr as users see them)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "personaforge", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, one `error:` line on stderr, no traceback; returns the message."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


# ------------------------------------------------------------------------------------------- a real browser
# Debian's chromium, driven by Playwright for Python (no browser download), shared by the browser tests of every
# folder (tests/browser, tests/studio): one Playwright session per run. `make test` installs chromium when it is
# missing; where it cannot (not root, no package), these tests are skipped and the reason is printed.
# As root on a closed network: no sandbox, and none of chromium's background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("PERSONAFORGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium: install Debian's chromium package (make test does when it can) or set"
                    " PERSONAFORGE_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        # Playwright starts every launch with a fresh, empty profile of its own.
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
