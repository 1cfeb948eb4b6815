// personaforge studio: the review page. Plain JavaScript, no build step.
// Record text only ever reaches the page through textContent / text nodes, never as markup.
"use strict";

(() => {
  const token = document.querySelector('meta[name="studio-token"]').content;
  let version = Number(document.querySelector('meta[name="studio-version"]').content);
  const $ = (id) => document.getElementById(id);
  const FILTERS = ["persona", "type", "generator", "split", "status", "sort"];
  const UNDO_KEY = "personaforge-studio-undo";
  const POLL_MS = 2000;

  let queue = [];        // record summaries in queue order
  let index = -1;        // position of the record shown
  let current = null;    // the record shown (detail)
  let mode = "view";     // view | edit | reject
  let busy = false;
  let nav = 0;           // bumped by every navigation: a late answer for an earlier one is dropped

  // ------------------------------------------------------------------------------------------- helpers
  const { el, api } = window.personaforgeStudio(token);  // common.js

  function notice(text, kind) {
    const box = $("notice");
    box.textContent = text || "";
    box.className = kind || "";
  }

  function undoStack() {
    try { return JSON.parse(sessionStorage.getItem(UNDO_KEY) || "[]"); } catch (_) { return []; }
  }

  function saveUndo(stack) { sessionStorage.setItem(UNDO_KEY, JSON.stringify(stack.slice(-1000))); }

  function filterValues() {
    const values = {};
    for (const name of FILTERS) values[name] = $(`filter-${name}`).value;
    return values;
  }

  function when(at) { return (at || "").replace("T", " ").replace(/\.\d+Z$/, " UTC"); }

  // ------------------------------------------------------------------------------------------- queue
  async function loadQueue(keepId) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(filterValues())) if (value) params.set(name, value);
    params.set("limit", "5000");
    const data = await api("GET", `/api/records?${params}`);
    queue = data.records;
    let at = keepId ? queue.findIndex((r) => r.id === keepId) : -1;
    if (at < 0) at = 0;
    if (!queue.length) {
      index = -1;
      current = null;
      $("record").replaceChildren(el("p", { class: "empty", text: "No records match these filters." }));
      updatePosition();
      return;
    }
    await show(at);
  }

  function updatePosition() {
    const where = index >= 0 ? `record ${index + 1} of ${queue.length}` : `0 records`;
    const todo = queue.filter((r) => r.status === "undecided" || r.status === "stale").length;
    $("position").textContent = `${where} · ${todo} undecided or stale in this queue`;
  }

  async function show(at, note) {
    if (at < 0 || at >= queue.length) return;
    const mine = ++nav;
    const id = queue[at].id;
    const detail = await api("GET", `/api/records/${encodeURIComponent(id)}`);
    if (mine !== nav) return;  // the reviewer moved on while this was loading
    index = at;
    render(detail);
    history.replaceState(null, "", `${location.pathname}${location.search}#${encodeURIComponent(id)}`);
    if (note !== undefined) notice(note);
  }

  function step(delta) {
    if (!queue.length) return;
    const at = index + delta;
    if (at < 0) { notice("This is the first record."); return; }
    if (at >= queue.length) { notice("End of the queue: every record in it has been shown."); return; }
    notice("");
    return show(at);
  }

  function nextTodo() {
    for (let at = index + 1; at < queue.length; at++) {
      const status = queue[at].status;
      if (status === "undecided" || status === "stale" || status === "flagged") { notice(""); return show(at); }
    }
    notice("Nothing left to do after this record in this queue.");
  }

  // ------------------------------------------------------------------------------------------ render
  function badge(text, cls, id) { return el("span", { class: `badge ${cls || ""}`, id, text }); }

  function textBlock(label, id, text) {
    return el("div", { class: "field" }, el("h3", { text: label }), el("p", { id, class: "text" }, text));
  }

  function render(detail) {
    current = detail;
    mode = "view";
    const record = $("record");
    record.dataset.id = detail.id;
    record.dataset.status = detail.status;
    const meta = el("div", { class: "meta" },
      badge(detail.status, `status-${detail.status}`, "status"),
      badge(detail.persona, "persona"), badge(detail.type, "type"), badge(detail.split, "split"),
      badge(detail.generator, "generator"), badge(`risk ${detail.risk.toFixed(2)}`, "risk"),
      el("code", { class: "record-id", text: detail.id }));
    const parts = [meta];
    if (detail.risk_reasons.length) {
      parts.push(el("ul", { class: "reasons" }, ...detail.risk_reasons.map((r) => el("li", { text: r }))));
    }
    parts.push(el("div", { id: "changed-banner", class: "banner changed", hidden: "" }));
    if (detail.stale) {
      const s = detail.stale;
      parts.push(el("div", { id: "stale-banner", class: "banner stale" },
        el("strong", { text: `Stale: ${s.decision.status} at ${when(s.decision.at)} on text that has changed since.` }),
        " The decision is not applied. Decide again.",
        el("div", { class: "sides" },
          el("div", { class: "old" }, el("h4", { text: "when decided" }),
            el("p", { class: "q", text: s.old.question }), el("p", { class: "a", text: s.old.answer })),
          el("div", { class: "new" }, el("h4", { text: "now" }),
            el("p", { class: "q", text: s.new.question }), el("p", { class: "a", text: s.new.answer })))));
    }
    if (detail.moved_from) {
      parts.push(el("p", { class: "note", text: `Decided as ${detail.moved_from}; the same text now has this id.` }));
    }
    if (detail.decision && detail.decision.reason) {
      parts.push(el("p", { class: "note", id: "decision-reason", text: `Reason: ${detail.decision.reason}` }));
    }
    parts.push(el("details", { class: "system" }, el("summary", { text: "System prompt" }),
      el("p", { text: detail.system || "(none)" })));
    if (detail.context.length) {
      parts.push(el("div", { class: "context" }, el("h3", { text: "Earlier turns (in the prompt)" }),
        ...detail.context.map((t) => el("div", { class: "exchange" },
          el("p", { class: "q", text: t.question }), el("p", { class: "a", text: t.answer })))));
    }
    parts.push(textBlock("Question", "question", detail.current.question));
    parts.push(textBlock(detail.status === "edited" ? "Answer (edited: this is what trains)" : "Answer", "answer",
      detail.current.answer));
    if (detail.status === "edited") {
      parts.push(el("details", { class: "original" }, el("summary", { text: "As built, before the edit" }),
        el("p", { class: "q", text: detail.original.question }), el("p", { class: "a", text: detail.original.answer })));
    }
    parts.push(el("div", { id: "reason-row", class: "reason-row", hidden: "" },
      el("label", { for: "reason", text: "Why reject? (optional; Enter rejects, Esc cancels)" }),
      el("input", { id: "reason", type: "text", maxlength: "2000", autocomplete: "off" })));
    parts.push(el("div", { id: "edit-help", class: "help", hidden: "" },
      "Edit the question and answer (Tab moves between them). Ctrl+Enter saves, Esc cancels."));
    const button = (key, label, action) => {
      const b = el("button", { type: "button", "data-key": key }, el("kbd", { text: key }), ` ${label}`);
      b.addEventListener("click", action);
      return b;
    };
    parts.push(el("div", { class: "actions" },
      button("a", "accept", () => decide("accept")), button("r", "reject", startReject),
      button("e", "edit", startEdit), button("f", "flag", () => decide("flag")), button("u", "undo", undo),
      button("k", "previous", () => step(-1)), button("j", "next", () => step(1))));
    parts.push(renderProvenance(detail.provenance));
    if (detail.history.length) {
      parts.push(el("details", { class: "history" }, el("summary", { text: `Decisions (${detail.history.length})` }),
        el("ol", {}, ...detail.history.map((d) => el("li", {
          text: `${when(d.at)}: ${d.status}${d.reason ? ` (${d.reason})` : ""}`
        })))));
    }
    record.replaceChildren(...parts);
    const entry = queue[index];
    if (entry && entry.id === detail.id) entry.status = detail.status;
    updatePosition();
  }

  function renderProvenance(p) {
    const box = el("section", { id: "provenance", class: "provenance" }, el("h3", { text: "Where it came from" }));
    const where = p.kind === "card" ? p.file : `${p.file}, lines ${p.lines[0]}–${p.lines[p.lines.length - 1]}`;
    box.append(el("p", { class: "where", text: where }));
    if (p.note) box.append(el("p", { class: "note", text: p.note }));
    for (const turn of p.turns) {
      const text = el("p", { class: "turn-text" });
      for (const span of turn.spans) text.append(span.mark ? el("mark", { text: span.text }) : document.createTextNode(span.text));
      box.append(el("div", { class: `turn role-${turn.role} kind-${turn.kind}` },
        el("span", { class: "who", text: turn.speaker }), el("span", { class: "line", text: `line ${turn.line}` }), text));
    }
    return box;
  }

  // ------------------------------------------------------------------------------------------ review
  async function decide(action, extra) {
    if (!current || busy) return;
    busy = true;
    const id = current.id;
    const at = nav;
    try {
      const body = Object.assign({ action, base: current.decision ? current.decision.n : null }, extra || {});
      const result = await api("POST", `/api/records/${encodeURIComponent(id)}/decision`, body);
      version = result.version;
      const stack = undoStack();
      stack.push(result.changed.decision);
      saveUndo(stack);
      const entry = queue[index];
      if (entry && entry.id === id) entry.status = result.status;
      let message = `${result.status}: ${id}`;
      let kind = "ok";
      const replaced = result.changed.replaced;
      if (replaced) {
        message = `This record was changed under you: another tab had decided "${replaced.status}" at ${when(replaced.at)}.`
          + ` Your "${result.status}" is the later decision and wins; both are kept in the review file.`;
        kind = "warn";
      }
      refreshProgress();
      if (at !== nav) {
        notice(message, kind);  // the reviewer moved to another record meanwhile: stay there
      } else if (index + 1 < queue.length && !replaced) {
        await show(index + 1, message);
        notice(message, kind);
      } else {
        render(result);
        notice(replaced ? message : `${message}. End of the queue.`, kind);
      }
    } catch (error) {
      notice(`Not saved: ${error.message}`, "error");
      return false;
    } finally {
      busy = false;
    }
    return true;
  }

  function startReject() {
    if (!current) return;
    mode = "reject";
    $("reason-row").hidden = false;
    $("reason").value = "";
    $("reason").focus();
  }

  function startEdit() {
    if (!current) return;
    mode = "edit";
    const q = el("textarea", { id: "edit-question", rows: "3", maxlength: "2000" });
    q.value = current.current.question;
    const a = el("textarea", { id: "edit-answer", rows: "10", maxlength: "20000" });
    a.value = current.current.answer;
    $("question").replaceWith(q);
    $("answer").replaceWith(a);
    $("edit-help").hidden = false;
    a.focus();
  }

  async function saveEdit() {
    const question = $("edit-question").value.trim();
    const answer = $("edit-answer").value.trim();
    if (question === current.original.question.trim() && answer === current.original.answer.trim()) {
      await decide("accept");  // nothing changed: the record as built is accepted
      return;
    }
    await decide("edit", { question, answer });
  }

  function cancel() {
    if (!current) return;
    render(current);
    notice("Cancelled.");
  }

  async function undo() {
    if (busy) return;
    busy = true;
    try {
      const stack = undoStack();
      let result = null;
      while (stack.length && result === null) {
        const key = stack.pop();
        try {
          result = await api("POST", "/api/undo", { decision: key });
        } catch (error) {
          if (error.status !== 409) throw error;  // already undone elsewhere: try the one before
        }
      }
      if (result === null) result = await api("POST", "/api/undo", {});
      saveUndo(stack);
      version = result.version;
      refreshProgress();
      const message = `Undid ${result.undone.action} on ${result.undone.id}` +
        (result.record ? `; it is now ${result.record.status}.` : ".");
      if (result.record) {
        const at = queue.findIndex((r) => r.id === result.record.id);
        if (at >= 0) {
          queue[at].status = result.record.status;
          index = at;
          nav += 1;
          render(result.record);
          history.replaceState(null, "", `${location.pathname}${location.search}#${encodeURIComponent(result.record.id)}`);
        }
      }
      notice(message, "ok");
    } catch (error) {
      notice(`Nothing undone: ${error.message}`, "error");
    } finally {
      busy = false;
    }
  }

  // -------------------------------------------------------------------------------- progress, other tabs
  function renderProgress(data) {
    const columns = ["reviewed", "accepted", "edited", "rejected", "flagged", "stale"];
    const cells = (counts) => columns.map((c) => el("td", {
      text: c === "reviewed" ? `${counts.reviewed} / ${counts.total}` : String(counts[c])
    }));
    const rows = [];
    for (const [persona, types] of Object.entries(data.by_persona_type)) {
      rows.push(el("tr", { class: "persona" },
        el("th", { colspan: String(columns.length + 1), scope: "rowgroup", text: persona })));
      for (const [type, counts] of Object.entries(types)) {
        rows.push(el("tr", {}, el("th", { scope: "row", text: type }), ...cells(counts)));
      }
    }
    rows.push(el("tr", { class: "total" }, el("th", { scope: "row", text: "all" }), ...cells(data.totals)));
    document.querySelector("#progress-table tbody").replaceChildren(...rows);
    $("stale-count").textContent = String(data.stale + data.orphaned);
    $("stale-link").className = data.stale + data.orphaned ? "alert" : "";
  }

  async function refreshProgress() {
    try { renderProgress(await api("GET", "/api/progress")); } catch (_) { /* the next poll tries again */ }
  }

  async function poll() {
    if (document.hidden || busy) return;
    let data;
    try { data = await api("GET", "/api/progress"); } catch (_) { return; }
    if (data.version === version) return;
    version = data.version;
    renderProgress(data);
    if (!current) return;
    let fresh;
    const mine = nav;
    try { fresh = await api("GET", `/api/records/${encodeURIComponent(current.id)}`); } catch (_) { return; }
    if (mine !== nav || !current || fresh.id !== current.id) return;
    const before = current.decision ? current.decision.n : null;
    const after = fresh.decision ? fresh.decision.n : null;
    if (before === after) return;
    const text = `This record changed in another tab or window: it is now "${fresh.status}".`;
    if (mode === "view") {
      render(fresh);
      const banner = $("changed-banner");
      banner.textContent = text;
      banner.hidden = false;
    } else {
      current.decision = fresh.decision;  // a save now says what it replaces
      notice(`${text} Your edit is still open; saving makes it the later decision.`, "warn");
    }
  }

  // ---------------------------------------------------------------------------------------- keyboard
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (mode === "edit") {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); saveEdit(); }
      else if (event.key === "Escape") { event.preventDefault(); cancel(); }
      return;
    }
    if (mode === "reject") {
      if (event.key === "Enter") { event.preventDefault(); decide("reject", { reason: $("reason").value.trim() || null }); }
      else if (event.key === "Escape") { event.preventDefault(); cancel(); }
      return;
    }
    if (target.matches("input, textarea, select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      j: () => step(1), ArrowRight: () => step(1), k: () => step(-1), ArrowLeft: () => step(-1), n: nextTodo,
      a: () => decide("accept"), r: startReject, e: startEdit, f: () => decide("flag"), u: undo,
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });

  // ------------------------------------------------------------------------------------------- start
  function start() {
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    const params = new URLSearchParams(location.search);
    for (const name of FILTERS) {
      const value = params.get(name);
      if (value !== null) $(`filter-${name}`).value = value;
    }
    for (const name of FILTERS) {
      $(`filter-${name}`).addEventListener("change", () => {
        const next = new URLSearchParams(location.search);
        for (const [key, value] of Object.entries(filterValues())) {
          if (value) next.set(key, value); else next.delete(key);
        }
        const query = next.toString();
        history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
        loadQueue(current ? current.id : null).catch((error) => notice(error.message, "error"));
      });
    }
    window.addEventListener("hashchange", () => {
      const id = decodeURIComponent(location.hash.slice(1));
      const at = queue.findIndex((r) => r.id === id);
      if (at >= 0 && (!current || current.id !== id)) show(at).catch((error) => notice(error.message, "error"));
    });
    const wanted = location.hash ? decodeURIComponent(location.hash.slice(1)) : null;
    loadQueue(wanted).catch((error) => notice(error.message, "error"));
    setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", poll);
  }

  start();
})();
