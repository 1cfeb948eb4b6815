"""The arena tab: blind votes between two answers to the same eval question (see personaforge.arena).

GET  /arena                                          the page (arena.js fills the matchup from the API)
GET  /api/arena/next?persona=&first=&second=         → {"matchup", "persona", "question", "left", "right"} (no names)
POST /api/arena/vote   {"matchup": ID, "vote": "left"|"right"|"tie"|"both_bad"}  → the vote, with both names
GET  /api/arena/ratings                              → ratings with intervals, side bias, vote count
The server remembers which competitor is on which side of each matchup it handed out; a vote names only the
matchup, so a page cannot learn or forge the sides before voting."""

from __future__ import annotations

import threading
from collections import OrderedDict
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from personaforge.arena import VOTE_CHOICES, VOTES_FILE, Matchup, Pool, VoteLog, next_matchup, rate
from personaforge.fileio import display_path
from personaforge.studio.api import BadRequest, error, read_json
from personaforge.studio.security import Security

PENDING = 1000  # matchups handed out and not yet voted on, oldest forgotten first
SHORTCUTS = [("a  or  1  or  ←", "left answer (A) is better"), ("b  or  2  or  →", "right answer (B) is better"),
             ("t  or  3", "tie"), ("x  or  4", "both are bad"), ("n  or  Enter", "next pair (skips when not voted)")]


class Arena:
    def __init__(self, runs_dir) -> None:
        self.pool = Pool.load(runs_dir)
        self.log = VoteLog(self.pool.runs_dir / VOTES_FILE)
        self.pending: OrderedDict[str, Matchup] = OrderedDict()
        self.lock = threading.Lock()

    def next(self, persona: str = "", first: str = "", second: str = "") -> dict:
        known = self.pool.competitors()
        for name, value in (("first", first), ("second", second)):
            if value and value not in known:
                raise BadRequest(400, f"'{name}': no competitor '{value}'; see the page's lists")
        matchup = next_matchup(self.pool, self.log.votes(), persona, first, second)
        if matchup is None:
            return {"matchup": None, "message": "nothing to compare with these choices: pick other competitors"
                                                " (both need answers to the same eval questions)"}
        with self.lock:
            self.pending[matchup.id] = matchup
            while len(self.pending) > PENDING:
                self.pending.popitem(last=False)
        return matchup.public()

    def vote(self, matchup_id: object, choice: object) -> dict:
        if choice not in VOTE_CHOICES:
            raise BadRequest(400, f"'vote' must be one of {', '.join(VOTE_CHOICES)}")
        with self.lock:
            matchup = self.pending.pop(matchup_id, None) if isinstance(matchup_id, str) else None
        if matchup is None:
            raise BadRequest(404, "no such matchup waiting for a vote (already voted, or the studio restarted);"
                                  " ask for the next one")
        vote = self.log.append(matchup.vote(choice))
        return {**vote, "left_label": self.pool.label(matchup.left), "right_label": self.pool.label(matchup.right),
                "votes": len(self.log.votes())}

    def ratings(self) -> dict:
        ratings = rate(self.log.votes())
        data = ratings.to_dict()
        for row in data["ratings"]:
            row["label"] = self.pool.label(row["key"])
        data["warnings"] = self.log.warnings
        data["votes_file"] = display_path(self.log.path)
        return data


def router(arena: Arena, security: Security, review: bool) -> APIRouter:
    routes = APIRouter()

    async def call(function, *args):
        try:
            return JSONResponse(await run_in_threadpool(function, *args))
        except BadRequest as exc:
            return error(exc.status, exc.message)

    @routes.get("/arena", response_class=HTMLResponse)
    def page():
        competitors = arena.pool.competitors()
        options = "".join(f'<option value="{escape(k)}">{escape(c.label)}</option>' for k, c in
                          sorted(competitors.items(), key=lambda kv: kv[1].label))
        personas = "".join(f'<option value="{escape(p)}">{escape(p)}</option>' for p in arena.pool.personas())
        shortcuts = "".join(f"<dt><kbd>{escape(k)}</kbd></dt><dd>{escape(v)}</dd>" for k, v in SHORTCUTS)
        nav = '<nav><a href="/">review</a> · <strong>arena</strong></nav>' if review else ""
        body = (
            f'<header><h1><a href="/arena">personaforge arena</a></h1>{nav}'
            f'<p class=where>{len(competitors)} competitors under <code>{escape(display_path(arena.pool.runs_dir))}'
            f'</code> · votes go to <code>{escape(display_path(arena.log.path))}</code></p></header>'
            "<main><section id=arena aria-label=Arena><form id=arena-filters>"
            f'<label>persona <select id=filter-persona><option value="">any</option>{personas}</select></label>'
            f'<label>one side <select id=filter-first><option value="">any</option>{options}</select></label>'
            f'<label>other side <select id=filter-second><option value="">any</option>{options}</select></label>'
            "</form><div id=notice role=status aria-live=polite></div>"
            "<article id=matchup><noscript>The arena needs JavaScript; the JSON API under /api/arena/ works without"
            " it.</noscript><p class=loading>loading…</p></article></section><aside>"
            f"<section id=shortcuts><h2>Keyboard</h2><dl>{shortcuts}</dl></section>"
            "<section id=standings><h2>Ratings</h2><table id=ratings-table><thead><tr><th>competitor</th>"
            '<th title="Bradley-Terry, Elo-like scale, 95% bootstrap interval">rating</th><th>votes</th>'
            '<th title="share of votes against the real answer where the model was preferred or tied">'
            "≥ real</th></tr></thead><tbody></tbody></table><p id=side-bias></p></section></aside></main>"
        )
        html = ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
                '<meta name=viewport content="width=device-width, initial-scale=1"><title>arena · personaforge studio'
                f'</title><meta name="studio-token" content="{escape(security.token)}">'
                '<link rel=stylesheet href="/static/studio.css"><script src="/static/common.js" defer></script>'
                '<script src="/static/arena.js" defer></script>'
                f"</head><body class=arena>{body}</body></html>")
        return HTMLResponse(html)

    @routes.get("/api/arena/next")
    async def next_pair(persona: str = "", first: str = "", second: str = ""):
        return await call(arena.next, persona, first, second)

    @routes.post("/api/arena/vote")
    async def vote(request: Request):
        try:
            data = await read_json(request, security.max_body)
        except BadRequest as exc:
            return error(exc.status, exc.message)
        return await call(arena.vote, data.get("matchup"), data.get("vote"))

    @routes.get("/api/arena/ratings")
    async def ratings():
        return await call(arena.ratings)

    return routes


DEFAULT_RUNS = "outputs/runs"


def open_arena(runs_dir, required: bool) -> Arena | None:
    """The arena over ``runs_dir`` (default outputs/runs); None when there is nothing to compare and it was not
    asked for by name."""
    from pathlib import Path

    from personaforge.errors import PersonaForgeError

    path = Path(runs_dir or DEFAULT_RUNS)
    if not required and not path.is_dir():
        return None
    arena = Arena(path)
    if not arena.pool.sets:
        if required:
            raise PersonaForgeError(f"--runs {display_path(path)}: no evaluated runs there (eval/*/predictions.jsonl);"
                                    " run persona eval RUN first")
        return None
    return arena
