"""Review the first 50 records of the bundled dataset in `persona studio` with the keyboard only, timed.

The decisions below are a person's: each of the 50 records (the studio's default queue, most likely bad first) was
read in full with its provenance, and accepted, edited or rejected for the reason given. This script replays them
through the review page in headless Chromium with key presses only (a, r + reason + Enter, e + Ctrl+A + text +
Ctrl+Enter, Shift+Tab to the question) and times the session; it also saves the screenshot docs/studio-review.png.

    persona data build configs/data/default.yaml
    .venv/bin/python bench/studio_keyboard_review.py [--screenshot docs/studio-review.png] [--review-file F]

The review file defaults to a temporary one, so data/default.review.jsonl is left alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

# (record id, action, argument): reject → reason; edit → {"question": ..., "answer": ...} (None keeps it).
EDITOR_NOTE = " EDITOR NOTE: nettle story = possible cold open, check we have the wide shot"
URCHIN_PREAMBLE = ("I'll give you the numbers and then I'll tell you what I feel, and you have to promise to keep them"
                   " in separate boxes in the edit. ")
ASKS_LEILA = (" Can I ask Leila something? I have been thinking about these urchins ever since she called them"
              " landlords. Why do they eat everything? Are they greedy, or only hungry?")
DECISIONS = [
    ("contrastive:festival-panel-L170-3:q8", "accept", None),
    ("extracted:festival-panel-L406", "edit", {"question": "What do you do on the days you feel hopeless?"}),
    ("hypothetical:haddad-station-L363-2:ocean-warming", "accept", None),
    ("hypothetical:festival-panel-L288-2:listening", "accept", None),
    ("hypothetical:haddad-station-L180-2:working-with-fishermen", "accept", None),
    ("contrastive:festival-panel-L25-0:q0", "accept", None),
    ("hypothetical:festival-panel-L49-1:teaching-children-music", "accept", None),
    ("hypothetical:varga-apiary-L208-1:honey", "accept", None),
    ("hypothetical:marchetti-gare-L118:teaching-children-music", "reject",
     "about the freight train ('it' = the train) and her years of touring, not about teaching children music"),
    ("hypothetical:festival-panel-L224-2:jazz-and-improvisation", "edit", {"question": "What do you grieve?"}),
    ("hypothetical:varga-apiary-L117-1:honey", "accept", None),
    ("extracted:festival-panel-L231-1", "edit", {"drop": "Fertiliser runs down from above, and the grass wins. "}),
    ("extracted:varga-apiary-L40-1", "edit", {"drop": EDITOR_NOTE}),
    ("hypothetical:festival-panel-L39-1:kelp-forests", "accept", None),
    ("hypothetical:festival-panel-L334-1:kelp-forests", "reject",
     "a reply to one fisherman in the audience ('Is it too late?', 'come and find me afterwards'), not an answer"
     " about kelp forests"),
    ("hypothetical:varga-apiary-L83-0:beekeeping", "accept", None),
    ("hypothetical:haddad-station-L270:sea-urchins", "accept", None),
    ("hypothetical:haddad-station-L327-0:sea-urchins", "edit", {"drop": URCHIN_PREAMBLE}),
    *[(f"negative:{who}:{topic}", "accept", None) for who, topics in (
        ("leila-haddad", ("jazz-and-improvisation", "teaching-children-music", "beekeeping", "honey")),
        ("odile-marchetti", ("kelp-forests", "sea-urchins", "beekeeping", "honey")),
        ("tomas-varga", ("kelp-forests", "sea-urchins", "jazz-and-improvisation", "teaching-children-music")))
      for topic in topics],
    ("hypothetical:marchetti-gare-L112:jazz-and-improvisation", "accept", None),
    *[(f"extracted:festival-panel-{seg}", "accept", None) for seg in (
        "L25-1", "L25-2", "L39-1", "L39-2", "L49-1", "L49-2", "L68-1", "L76-1", "L88-1", "L88-2", "L88-3")],
    ("extracted:festival-panel-L88-4", "edit", {"drop": ASKS_LEILA}),
    *[(f"extracted:festival-panel-{seg}", "accept", None) for seg in (
        "L98-1", "L104-1", "L113-1", "L139-1", "L139-2", "L147-1", "L162-1")],
]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from playwright.sync_api import sync_playwright

    from personaforge.studio.app import Background, create_app
    from personaforge.studio.security import Security
    from personaforge.studio.state import Studio

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/default")
    parser.add_argument("--review-file")
    parser.add_argument("--screenshot")
    parser.add_argument("--screenshot-at", default="extracted:varga-apiary-L40-1")
    args = parser.parse_args()
    temporary = Path(tempfile.mkdtemp())
    review = Path(args.review_file) if args.review_file else temporary / "default.review.jsonl"
    studio = Studio.open(Path(args.data), review)
    security = Security()
    planned = [d[0] for d in DECISIONS]
    queue = [r["id"] for r in studio.query(limit=5000)["records"]]
    missing = [i for i in planned if i not in queue]
    if missing:
        print(f"these reviewed records are not in the dataset (rebuilt with other code?): {missing[:5]}")
        return 1
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with Background(create_app(studio, security), security=security) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1250})
        page.goto(url)
        page.wait_for_selector("#record[data-id]")
        keys = skipped = 0
        started = time.perf_counter()
        todo = dict((record_id, (action, argument)) for record_id, action, argument in DECISIONS)
        while todo:
            shown = page.get_attribute("#record", "data-id")
            if shown not in todo:
                # not among the 50 reviewed (the queue order changed since): move on with j
                page.keyboard.press("j")
                keys += 1
                skipped += 1
                page.wait_for_function("id => document.querySelector('#record').dataset.id !== id", arg=shown)
                continue
            if args.screenshot and shown == args.screenshot_at:
                page.screenshot(path=args.screenshot)
            action, argument = todo.pop(shown)
            if action == "accept":
                page.keyboard.press("a")
                keys += 1
            elif action == "reject":
                page.keyboard.press("r")
                page.keyboard.type(argument)
                page.keyboard.press("Enter")
                keys += 2 + len(argument)
            else:
                page.keyboard.press("e")
                keys += 1
                answer = page.locator("#edit-answer").input_value()
                if "drop" in argument:
                    assert argument["drop"] in answer, (shown, argument["drop"])
                    page.keyboard.press("Control+A")
                    text = answer.replace(argument["drop"], "").strip()
                    page.keyboard.type(text)
                    keys += 1 + len(text)
                if "question" in argument:
                    page.keyboard.press("Shift+Tab")
                    page.keyboard.press("Control+A")
                    page.keyboard.type(argument["question"])
                    keys += 2 + len(argument["question"])
                page.keyboard.press("Control+Enter")
                keys += 1
            # the decision is saved and the page moved on (or, at the end of the queue, said so)
            page.wait_for_function("id => document.querySelector('#record').dataset.id !== id"
                                   " || document.querySelector('#notice').textContent.includes('End of the queue')",
                                   arg=shown)
        elapsed = time.perf_counter() - started
        browser.close()
    lines = [json.loads(line) for line in review.read_text().splitlines()]
    words = 0
    for record_id in planned:
        detail = studio.detail(record_id)
        words += sum(len(t.split()) for t in (detail["question"], detail["original"]["answer"]))
        words += sum(len(c["question"].split()) + len(c["answer"].split()) for c in detail["context"])
    counts = {a: sum(1 for line in lines if line["action"] == a) for a in ("accept", "edit", "reject")}
    print(json.dumps({"records": len(planned), "skipped_with_j": skipped, "decisions": counts,
                      "keyboard_session_s": round(elapsed, 1),
                      "key_presses_and_typed_characters": keys, "words_to_read": words,
                      "review_file": str(review)}, indent=2))
    for line in lines:
        if line["action"] != "accept":
            print(f"{line['action']}: {line['id']}: {line.get('reason') or ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
