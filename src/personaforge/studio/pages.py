"""Server-rendered pages: the review page (its record panel is filled by studio.js from the JSON API) and the list
of stale decisions. Every piece of record or file text goes through html.escape here, and through textContent in
the page's script: record text can never become markup."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from personaforge.fileio import display_path
from personaforge.studio.security import Security
from personaforge.studio.state import STATUS_FILTERS, Studio

SHORTCUTS = [
    ("j  or  →", "next record"),
    ("k  or  ←", "previous record"),
    ("n", "next record still to do"),
    ("a", "accept"),
    ("r", "reject: type a reason (optional), Enter"),
    ("e", "edit question and answer: Tab between them, Ctrl+Enter saves, Esc cancels"),
    ("f", "flag for later"),
    ("u", "undo the last decision"),
    ("Esc", "cancel an edit or a rejection"),
]
COLUMNS = ("reviewed", "accepted", "edited", "rejected", "flagged", "stale")
HEADINGS = [("type", "record type"), ("reviewed", "reviewed / total (accepted, edited, rejected or flagged)"),
            ("acc.", "accepted"), ("edit", "edited"), ("rej.", "rejected"), ("flag", "flagged"),
            ("stale", "decided on text that has changed since")]
STATUS_LABELS = {"": "all", "todo": "to do (undecided, stale, flagged)", "reviewed": "reviewed"}


def _options(name: str, values: list[str], labels: dict[str, str] | None = None, first: str | None = "all") -> str:
    out = [f'<option value="">{escape(first)}</option>'] if first is not None else []
    for value in values:
        label = (labels or {}).get(value, value)
        out.append(f'<option value="{escape(value)}">{escape(label)}</option>')
    return f'<select id="filter-{name}" name="{name}">' + "".join(out) + "</select>"


def progress_html(progress: dict) -> str:
    """Per persona, a row per record type: reviewed / total, then the decisions. studio.js redraws it the same way."""
    def cells(counts: dict) -> str:
        return "".join(f"<td>{counts['reviewed']} / {counts['total']}</td>" if c == "reviewed" else
                       f"<td>{counts[c]}</td>" for c in COLUMNS)

    rows = []
    for persona, types in progress["by_persona_type"].items():
        rows.append(f'<tr class=persona><th colspan={len(COLUMNS) + 1} scope=rowgroup>{escape(persona)}</th></tr>')
        for record_type, counts in types.items():
            rows.append(f"<tr><th scope=row>{escape(record_type)}</th>{cells(counts)}</tr>")
    rows.append(f'<tr class=total><th scope=row>all</th>{cells(progress["totals"])}</tr>')
    head = "".join(f'<th scope=col title="{escape(title)}">{escape(short)}</th>' for short, title in HEADINGS)
    return f'<table id="progress-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _page(title: str, body: str, security: Security, version: int, script: bool) -> HTMLResponse:
    tags = ('<script src="/static/common.js" defer></script><script src="/static/studio.js" defer></script>'
            if script else "")
    html = (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<meta name="studio-token" content="{escape(security.token)}">'
        f'<meta name="studio-version" content="{version}">'
        f'<link rel=stylesheet href="/static/studio.css">{tags}</head>'
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(html)


def router(studio: Studio, security: Security, arena: bool = False) -> APIRouter:
    pages = APIRouter()
    nav = '<nav><strong>review</strong> · <a href="/arena">arena</a></nav>' if arena else ""

    def header(extra: str = "") -> str:
        stale = studio.stale()
        count = len(stale["stale"]) + len(stale["orphaned"])
        return (
            f'<header><h1><a href="/">personaforge studio</a></h1>{nav}'
            f'<p class=where>{len(studio.records)} records of <code>{escape(display_path(studio.dataset))}</code>'
            f' · decisions go to <code>{escape(display_path(studio.review_file))}</code></p>'
            f'<a id=stale-link href="/stale" class="{"alert" if count else ""}">stale decisions: '
            f'<span id=stale-count>{count}</span></a>{extra}</header>'
        )

    @pages.get("/", response_class=HTMLResponse)
    def review_page():
        filters = studio.filters()
        progress = studio.progress()
        shortcuts = "".join(f"<dt><kbd>{escape(k)}</kbd></dt><dd>{escape(v)}</dd>" for k, v in SHORTCUTS)
        warnings = "".join(f"<li>{escape(w)}</li>" for w in progress["warnings"])
        body = (
            header()
            + "<main><section id=review aria-label=Review>"
            + '<form id=filters>'
            + f"<label>persona {_options('persona', filters['persona'])}</label>"
            + f"<label>type {_options('type', filters['type'])}</label>"
            + f"<label>generator {_options('generator', filters['generator'])}</label>"
            + f"<label>split {_options('split', filters['split'])}</label>"
            + f"<label>status {_options('status', [s for s in STATUS_FILTERS if s], STATUS_LABELS)}</label>"
            + "<label>order " + _options("sort", ["risk", "file"], {"risk": "most likely bad first",
                                                                  "file": "as built"}, first=None) + "</label>"
            + "</form>"
            + (f"<ul id=file-warnings class=warnings>{warnings}</ul>" if warnings else "")
            + "<div id=position aria-live=polite></div>"
            + "<div id=notice role=status aria-live=polite></div>"
            + "<article id=record><noscript>The review page needs JavaScript; the JSON API under /api/ works"
              " without it.</noscript><p class=loading>loading…</p></article>"
            + "</section><aside>"
            + f"<section id=shortcuts><h2>Keyboard</h2><dl>{shortcuts}</dl></section>"
            + f"<section id=progress><h2>Progress</h2>{progress_html(progress)}</section>"
            + "</aside></main>"
        )
        return _page("personaforge studio", body, security, progress["version"], script=True)

    @pages.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    @pages.get("/stale", response_class=HTMLResponse)
    def stale_page():
        stale = studio.stale()
        parts = ["<h2>Stale decisions</h2>",
                 "<p>The record's text changed since the decision (the transcripts or the build changed), so the"
                 " decision is not applied. Open the record and decide again.</p>"]
        if not stale["stale"]:
            parts.append("<p class=none>None.</p>")
        for item in stale["stale"]:
            parts.append(_change(item, new=True))
        parts.append("<h2>Decisions on records the build no longer has</h2>")
        if not stale["orphaned"]:
            parts.append("<p class=none>None.</p>")
        for item in stale["orphaned"]:
            parts.append(_change(item, new=False))
        body = header() + "<main class=single><section id=stale>" + "".join(parts) + "</section></main>"
        return _page("stale decisions · personaforge studio", body, security, stale["version"], script=False)

    return pages


def _change(item: dict, new: bool) -> str:
    decision = item["decision"]
    reason = f" ({escape(decision['reason'])})" if decision.get("reason") else ""
    link = (f'<a href="/#{escape(quote(item["id"], safe=""))}">{escape(item["id"])}</a>' if new else f"<code>{escape(item['id'])}</code>")
    rows = [f"<div class=change><h3>{link}: {escape(decision['status'])}{reason} at {escape(decision['at'])}</h3>"]
    rows.append("<div class=sides><div class=old><h4>when decided</h4>"
                f"<p class=q>{escape(item['old']['question'])}</p><p class=a>{escape(item['old']['answer'])}</p></div>")
    if new:
        rows.append("<div class=new><h4>now</h4>"
                    f"<p class=q>{escape(item['new']['question'])}</p><p class=a>{escape(item['new']['answer'])}</p></div>")
    rows.append("</div></div>")
    return "".join(rows)

