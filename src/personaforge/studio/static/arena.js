// personaforge studio: the arena tab. Plain JavaScript; answer text only reaches the page through textContent.
"use strict";

(() => {
  const token = document.querySelector('meta[name="studio-token"]').content;
  const $ = (id) => document.getElementById(id);
  const VOTES = { left: "A is better", right: "B is better", tie: "tie", both_bad: "both bad" };
  let current = null;   // the matchup shown
  let voted = false;
  let busy = false;

  const { el, api } = window.personaforgeStudio(token);  // common.js

  function notice(text, kind) { const box = $("notice"); box.textContent = text || ""; box.className = kind || ""; }

  function side(name, letter, text) {
    return el("div", { class: "side", id: `side-${name}` },
      el("h3", {}, el("kbd", { text: letter }), " ", el("span", { class: "who", id: `who-${name}`, text: "hidden" })),
      el("p", { class: "text answer", id: `answer-${name}`, text }));
  }

  function show(data) {
    const box = $("matchup");
    box.replaceChildren();
    current = data.matchup ? data : null;
    voted = false;
    box.removeAttribute("data-matchup");
    box.removeAttribute("data-voted");
    if (!current) { box.append(el("p", { class: "none", text: data.message || "nothing to compare" })); return; }
    box.append(el("div", { class: "meta" }, el("span", { class: "badge", text: data.persona }),
                  el("span", { class: "record-id", text: data.question_id })),
               el("h3", { text: "Question" }), el("p", { class: "text", id: "arena-question", text: data.question }),
               el("div", { class: "sides" }, side("left", "A", data.left), side("right", "B", data.right)),
               el("p", { class: "hint", text: "Vote: a, b, t (tie) or x (both bad). Names show after the vote." }));
    box.setAttribute("data-matchup", data.matchup);
  }

  async function next() {
    if (busy) return;
    busy = true;
    try {
      const params = new URLSearchParams();
      for (const name of ["persona", "first", "second"]) { const v = $(`filter-${name}`).value; if (v) params.set(name, v); }
      show(await api("GET", `/api/arena/next?${params}`));
      if (!voted) notice("");
    } catch (error) { notice(error.message, "error"); } finally { busy = false; }
  }

  async function vote(choice) {
    if (!current || voted || busy) return;
    busy = true;
    try {
      const result = await api("POST", "/api/arena/vote", { matchup: current.matchup, vote: choice });
      voted = true;
      $("who-left").textContent = result.left_label;
      $("who-right").textContent = result.right_label;
      const winner = { left: "side-left", right: "side-right" }[choice];
      if (winner) $(winner).classList.add("won");
      $("matchup").setAttribute("data-voted", choice);
      notice(`Voted: ${VOTES[choice]} (${result.votes} votes so far). n or Enter for the next pair.`, "ok");
    } catch (error) { notice(error.message, "error"); return; } finally { busy = false; }
    standings().catch((error) => notice(error.message, "error"));
  }

  function fmt(x, digits) { return x === null || x === undefined ? "—" : Number(x).toFixed(digits); }

  async function standings() {
    const data = await api("GET", "/api/arena/ratings");
    const rows = data.ratings.map((r) => el("tr", { "data-key": r.key },
      el("th", { scope: "row", text: r.label }),
      el("td", { text: `${fmt(r.rating, 0)} [${fmt(r.ci[0], 0)}, ${fmt(r.ci[1], 0)}]` }),
      el("td", { text: String(r.votes) }),
      el("td", { text: r.reference_share === null ? "—" :
        `${fmt(100 * r.reference_share, 0)}% [${fmt(100 * r.reference_ci[0], 0)}, ${fmt(100 * r.reference_ci[1], 0)}] of ${r.vs_reference}` })));
    $("ratings-table").tBodies[0].replaceChildren(...rows);
    const bias = data.side_bias;
    $("side-bias").textContent = bias.left_share === null ? `${data.votes} votes; side bias: no decisive votes yet` :
      `${data.votes} votes; the left answer won ${fmt(100 * bias.left_share, 0)}% of ${bias.decisive_votes} decisive` +
      ` votes [${fmt(100 * bias.ci[0], 0)}, ${fmt(100 * bias.ci[1], 0)}] (50% = no side bias)`;
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.matches("input, textarea, select")) { if (event.key === "Escape") target.blur(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      a: () => vote("left"), 1: () => vote("left"), ArrowLeft: () => vote("left"),
      b: () => vote("right"), 2: () => vote("right"), ArrowRight: () => vote("right"),
      t: () => vote("tie"), 3: () => vote("tie"), x: () => vote("both_bad"), 4: () => vote("both_bad"),
      n: next, Enter: next,
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });

  for (const name of ["persona", "first", "second"]) $(`filter-${name}`).addEventListener("change", () => { $(`filter-${name}`).blur(); next(); });
  $("arena-filters").addEventListener("submit", (event) => event.preventDefault());
  next();
  standings().catch((error) => notice(error.message, "error"));
})();
