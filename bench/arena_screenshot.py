"""docs/arena.png: the studio's arena tab over a runs folder, in Debian's chromium (Playwright, no browser download).

It only looks: no vote is cast. Run: `.venv/bin/python bench/arena_screenshot.py --runs outputs/demo/runs`
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="outputs/demo/runs")
    parser.add_argument("--persona", default="Leila Haddad")
    parser.add_argument("--out", default=str(REPO / "docs" / "arena.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from personaforge.studio.app import Background, create_app
    from personaforge.studio.arena import Arena
    from personaforge.studio.security import Security

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: apt-get install chromium")
    security = Security()
    with Background(create_app(None, security, Arena(Path(args.runs))), security=security) as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 560})
        page.goto(url.rstrip("/") + "/arena")
        page.wait_for_selector("#matchup[data-matchup]")
        page.select_option("#filter-persona", args.persona)
        page.wait_for_selector("#matchup[data-matchup]")
        page.wait_for_selector("#ratings-table tbody tr")
        page.wait_for_timeout(300)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
