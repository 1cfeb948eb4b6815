"""The studio's JSON API and its security rules, over real HTTP against a server on a free loopback port."""

from __future__ import annotations

import json
from urllib.parse import quote

from tests.studio.conftest import XSS, http, serve


def api(served, path: str) -> str:
    return f"{served.base}/api/{path}"


def decide(served, record_id: str, body: dict, headers: dict | None = None):
    return http("POST", api(served, f"records/{quote(record_id, safe='')}/decision"), body, headers)


def test_list_filters_sorts_and_pages(served):
    everything = http("GET", api(served, "records?limit=100")).json()
    assert everything["total"] == 6 and all("id" in r for r in everything["records"])
    # most likely bad first: the written questions (template) come before the verbatim records
    assert {r["generator"] for r in everything["records"][:2]} == {"template"}
    as_built = http("GET", api(served, "records?sort=file")).json()["records"]
    assert [r["id"] for r in as_built] == [r["id"] for r in served.dataset.records]
    ben = http("GET", api(served, "records?persona=Ben%20Ortiz&type=extracted")).json()
    assert sorted(r["id"] for r in ben["records"]) == ["extracted:talk-L6", "extracted:talk-L8"]
    page = http("GET", api(served, "records?sort=file&offset=2&limit=2")).json()
    assert [r["id"] for r in page["records"]] == ["transformed:talk-L2", "extracted:talk-L6"]
    assert http("GET", api(served, "records?status=undecided")).json()["total"] == 6
    for bad in ("status=burnt", "limit=0", "offset=-1", "sort=random", "offset=abc"):
        reply = http("GET", api(served, f"records?{bad}"))
        assert reply.status == 400 and "error" in reply.json(), bad


def test_detail_has_the_prompt_parts_and_provenance_with_the_answer_marked(served):
    detail = http("GET", api(served, "records/extracted%3Atalk-L4")).json()
    assert detail["question"] == "And the storms?"
    assert detail["context"] == [{"question": "What do you do when the fog comes in?",
                                  "answer": served.dataset.record("extracted:talk-L2")["completion"].strip()}]
    assert detail["system"] == "You are Ada Bell." and detail["status"] == "undecided"
    provenance = detail["provenance"]
    assert provenance["file"].endswith("talk.txt") and provenance["lines"] == [4, 4]
    roles = [(t["speaker"], t["role"]) for t in provenance["turns"]]
    assert ("Interviewer", "question") in roles and ("Ada", "answer") in roles
    answer_turn = next(t for t in provenance["turns"] if t["role"] == "answer")
    assert [s["text"] for s in answer_turn["spans"] if s["mark"]] == [detail["answer"]]
    assert provenance["coverage"] == 1.0 and provenance["marked_speakers"] == ["Ada"]
    assert http("GET", api(served, "records/nope")).status == 404


def test_accept_reject_edit_flag_and_undo(served):
    dataset = served.dataset
    accepted = decide(served, "extracted:talk-L2", {"action": "accept"})
    assert accepted.status == 200 and accepted.json()["status"] == "accepted"
    rejected = decide(served, "hypothetical:talk-L10:bread", {"action": "reject", "reason": "topic question misfits"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["decision"]["reason"] == "topic question misfits"
    edited = decide(served, "extracted:talk-L6", {"action": "edit", "answer": "I light the oven at three."}).json()
    assert edited["status"] == "edited" and edited["current"]["answer"] == "I light the oven at three."
    assert edited["original"]["answer"].startswith("The oven takes an hour")
    assert decide(served, "extracted:talk-L8", {"action": "flag"}).json()["status"] == "flagged"
    assert [d["action"] for d in dataset.decisions()] == ["accept", "reject", "edit", "flag"]
    progress = http("GET", api(served, "progress")).json()
    assert progress["totals"]["reviewed"] == 4 and progress["totals"]["total"] == 6
    assert progress["by_persona_type"]["Ben Ortiz"]["extracted"] == {
        "total": 2, "reviewed": 2, "accepted": 0, "edited": 1, "rejected": 0, "flagged": 1, "stale": 0}
    # undo a named decision, then the latest one in force
    edit_key = edited["changed"]["decision"]
    undone = http("POST", api(served, "undo"), {"decision": edit_key}).json()
    assert undone["undone"]["id"] == "extracted:talk-L6" and undone["record"]["status"] == "undecided"
    assert http("POST", api(served, "undo"), {"decision": edit_key}).status == 409
    latest = http("POST", api(served, "undo")).json()
    assert latest["undone"]["id"] == "extracted:talk-L8"
    assert dataset.decisions()[-1] == {**dataset.decisions()[-1], "action": "undo"}
    assert http("GET", api(served, "records?status=reviewed")).json()["total"] == 2


def test_bad_decisions_are_refused_with_a_clear_message_and_nothing_written(served):
    cases = [
        ({"action": "edit", "answer": "  "}, 400, "answer cannot be empty"),
        ({"action": "edit", "question": ""}, 400, "question cannot be empty"),
        ({"action": "explode"}, 400, "unknown action"),
        ({"action": "accept", "answer": "x"}, 400, "takes no question or answer"),
        ({"action": "accept", "extra": 1}, 400, "unknown key 'extra'"),
        ({"action": "reject", "reason": 5}, 400, "'reason' must be a string"),
        ({}, 400, "give an action"),
    ]
    for body, status, message in cases:
        reply = decide(served, "extracted:talk-L2", body)
        assert reply.status == status and message in reply.json()["error"], (body, reply.body)
    not_json = http("POST", api(served, "records/extracted%3Atalk-L2/decision"), raw=b"action=accept",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status == 415
    garbage = http("POST", api(served, "records/extracted%3Atalk-L2/decision"), raw=b"{not json")
    assert garbage.status == 400
    huge = decide(served, "extracted:talk-L2", {"action": "edit", "answer": "word " * 20000})
    assert huge.status == 413 and "too large" in huge.json()["error"]
    assert served.dataset.decisions() == []


def test_get_never_changes_state(served):
    target = api(served, "records/extracted%3Atalk-L2/decision")
    for url in (target, target + "?action=reject", api(served, "undo"), served.base + "/?action=accept"):
        assert http("GET", url).status in (200, 404, 405)
    assert served.dataset.decisions() == []
    assert http("GET", api(served, "records/extracted%3Atalk-L2")).json()["status"] == "undecided"


def test_cross_origin_posts_are_refused_same_origin_and_scripts_are_not(served):
    origin = served.base
    refused = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
               {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
               {"Origin": "http://evil.example", "X-Studio-Token": served.token}]
    for headers in refused:
        reply = decide(served, "extracted:talk-L2", {"action": "reject"}, headers)
        assert reply.status == 403 and "refused" in reply.json()["error"], headers
    assert served.dataset.decisions() == []
    same = decide(served, "extracted:talk-L2", {"action": "accept"}, {"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert same.status == 200
    script = decide(served, "extracted:talk-L4", {"action": "accept"})  # curl / python on this machine
    assert script.status == 200
    assert len(served.dataset.decisions()) == 2


def test_a_foreign_host_header_is_refused_on_loopback(served):
    # a web page that rebinds its own domain to 127.0.0.1 sends its own name as Host
    reply = http("GET", api(served, "records"), headers={"Host": "evil.example:8765"})
    assert reply.status == 403
    assert http("GET", api(served, "records"), headers={"Host": "localhost"}).status == 200


def test_off_loopback_every_request_needs_the_token(dataset):
    background, security = serve(dataset, require_token=True)
    with background as url:
        base = url.split("?")[0].rstrip("/")
        assert "?token=" in url and security.token in url
        for path in ("/", "/api/records", "/api/records/extracted%3Atalk-L2", "/static/studio.js", "/stale"):
            reply = http("GET", base + path)
            assert reply.status == 403, path
        assert http("GET", base + "/api/records?token=wrong").status == 403
        assert http("POST", base + "/api/records/extracted%3Atalk-L2/decision", {"action": "accept"}).status == 403
        assert dataset.decisions() == []
        bearer = {"Authorization": f"Bearer {security.token}"}
        assert http("GET", base + "/api/records", headers=bearer).status == 200
        assert http("GET", base + f"/api/records?token={security.token}").status == 200
        # the printed URL: the token moves into a cookie and out of the address bar
        opened = http("GET", url)
        assert opened.status == 303 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in opened.headers["set-cookie"] and "SameSite=Strict" in opened.headers["set-cookie"]
        page = http("GET", base + "/", headers={"Cookie": cookie})
        assert page.status == 200 and security.token.encode() in page.body  # the page's script sends it on POST
        # the cookie alone reads, but does not change anything: a change needs the token in a header
        assert http("POST", base + "/api/records/extracted%3Atalk-L2/decision", {"action": "accept"},
                    headers={"Cookie": cookie}).status == 403
        ok = http("POST", base + "/api/records/extracted%3Atalk-L2/decision", {"action": "accept"}, headers=bearer)
        assert ok.status == 200 and len(dataset.decisions()) == 1


def test_ids_from_requests_never_reach_the_file_system(served, tmp_path):
    secret = served.dataset.root / "secret.txt"
    secret.write_text("do not serve", encoding="utf-8")
    for record_id in ("..%2F..%2Fsecret.txt", "..%2Fsecret.txt", quote(str(secret), safe=""), "%2Fetc%2Fpasswd"):
        for path in (f"records/{record_id}", f"records/{record_id}/decision"):
            reply = http("GET" if path.endswith(record_id) else "POST", api(served, path), {"action": "accept"})
            assert reply.status == 404 and b"do not serve" not in reply.body
    static = http("GET", served.base + "/static/..%2F..%2F..%2Fcli.py")
    assert static.status == 404
    assert served.dataset.decisions() == []


def test_record_text_is_escaped_in_server_pages_and_the_api_sends_it_as_data(dataset):
    from personaforge.dataset.review import ReviewLog

    # a decision made on older text (now stale) whose text and reason are markup
    record = dataset.record("extracted:talk-L2")
    older = {**record, "completion": " <img src=x onerror=alert(3)> older", "messages": [
        *record["messages"][:-1], {"role": "assistant", "content": "<img src=x onerror=alert(3)> older"}]}
    ReviewLog.load(dataset.review).decide(older, "reject", reason="<b>bold</b> <script>alert(2)</script>")
    background, _ = serve(dataset)
    with background as url:
        base = url.rstrip("/")
        detail = http("GET", f"{base}/api/records/extracted%3Atalk-L8").json()
        assert detail["answer"] == XSS  # JSON: the page puts it in with textContent
        assert http("GET", f"{base}/api/records/extracted%3Atalk-L2").json()["status"] == "stale"
        page = http("GET", f"{base}/stale").body.decode()
        assert "<script>alert" not in page and "<img" not in page and "<b>" not in page
        assert "&lt;img src=x onerror=alert(3)&gt; older" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
        headers = http("GET", f"{base}/").headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"


def test_two_clients_deciding_the_same_record_are_both_kept_and_the_later_wins(served):
    first = decide(served, "extracted:talk-L2", {"action": "reject", "base": None}).json()
    # the second client still shows the record as undecided (base: null) and accepts it
    second = decide(served, "extracted:talk-L2", {"action": "accept", "base": None}).json()
    assert second["status"] == "accepted"
    assert second["changed"]["replaced"]["status"] == "rejected"
    assert second["changed"]["replaced"]["n"] == first["changed"]["decision"]
    assert [d["action"] for d in served.dataset.decisions()] == ["reject", "accept"]
    # a client that had seen the rejection is told nothing was replaced under it
    third = decide(served, "extracted:talk-L2", {"action": "flag", "base": second["changed"]["decision"]}).json()
    assert third["changed"]["replaced"] is None
    assert [d["status"] for d in third["history"]] == ["rejected", "accepted", "flagged"]
