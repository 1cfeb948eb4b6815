"""persona serve under 1, 4 and 8 concurrent clients: aggregate answer tokens/s and latency per request.

The real command (`persona serve RUN --port 0`) runs in its own process; each client is a thread that sends
non-streaming greedy chat requests one after another (a closed loop). Every level sends the same requests (the
run's eval questions, cycled to clients × rounds for the most clients), so the answers are compared with the
one-client answers
(identical is the claim: the batcher decodes greedy answers as they are decoded alone). Tokens/s counts the
answer tokens the server reports (usage.completion_tokens) over the wall time of the level.

Run: `.venv/bin/python bench/serve_concurrency.py --run outputs/demo/runs/latest --rounds 3`
→ bench/results/<date>-<host>-serve.json and .md (with the machine's load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, fmt, machine, markdown_table, write_json  # noqa: E402


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def questions(run: Path) -> list[tuple[str, str]]:
    """(model id, question) for every eval prediction of the run."""
    from personaforge.personas import slugify

    rows = [json.loads(line) for line in (run / "eval" / "eval" / "predictions.jsonl").read_text().splitlines()
            if line.strip()]
    return [(slugify(r["persona"]), r["question"]) for r in rows]


def post(url: str, model: str, question: str) -> tuple[str, int, float]:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": question}]}).encode()
    request = urllib.request.Request(url + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        data = json.loads(response.read())
    return data["choices"][0]["message"]["content"], data["usage"]["completion_tokens"], time.perf_counter() - started


def level(url: str, work: list[tuple[str, str]], clients: int) -> dict:
    """``work`` split over ``clients`` threads, each sending its share one request at a time."""
    answers: dict[int, str] = {}
    tokens: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        for i in range(index, len(work), clients):
            text, count, seconds = post(url, *work[i])
            with lock:
                answers[i] = text
                tokens.append(count)
                latencies.append(seconds)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(work), "wall_s": wall, "answer_tokens": sum(tokens),
            "tokens_per_s": sum(tokens) / wall, "latency_mean_s": statistics.mean(latencies),
            "latency_p50_s": statistics.median(latencies), "latency_max_s": max(latencies),
            "answers": [answers[i] for i in range(len(work))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="outputs/demo/runs/latest", help="a finished, evaluated run folder")
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--rounds", type=int, default=3, help="requests per client at the most clients")
    args = parser.parse_args()
    run = Path(args.run).resolve()
    levels = [int(c) for c in args.clients.split(",")]
    pool = questions(run)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    server = subprocess.Popen([sys.executable, "-m", "personaforge", "serve", str(run), "--port", "0"], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("serving on "):
            raise SystemExit(f"persona serve did not start: {line!r}")
        url = line.removeprefix("serving on ")
        load_before = load_average()
        results = []
        work = [pool[i % len(pool)] for i in range(max(levels) * args.rounds)]
        for clients in levels:
            level(url, pool[:clients], clients)  # warm-up at this batch size: first-call costs are not throughput
            results.append(level(url, work, clients))
            print(f"{clients} clients: {results[-1]['tokens_per_s']:.1f} answer tokens/s", flush=True)
        load_after = load_average()
    finally:
        server.terminate()
        server.wait(60)
    one = results[0]
    for result in results:
        result["speedup"] = result["tokens_per_s"] / one["tokens_per_s"]
        same = sum(a == b for a, b in zip(result["answers"], one["answers"]))
        result["identical_to_one_client"] = f"{same}/{len(one['answers'])}"
    header = ["clients", "requests", "answer tokens", "wall s", "answer tokens/s", "× one client",
              "latency mean s", "p50 s", "max s", "answers identical to 1 client"]
    rows = [[r["clients"], r["requests"], r["answer_tokens"], fmt(r["wall_s"], 1), fmt(r["tokens_per_s"], 1),
             fmt(r["speedup"], 2), fmt(r["latency_mean_s"], 2), fmt(r["latency_p50_s"], 2),
             fmt(r["latency_max_s"], 2), r["identical_to_one_client"]] for r in results]
    table = markdown_table(header, rows)
    info = machine()
    stamp = time.strftime("%Y-%m-%d")
    out = RESULTS / f"{stamp}-{info['host']}-serve"
    write_json(out.with_suffix(".json"), {"machine": info, "run": str(run), "rounds": args.rounds,
                                          "load_before": load_before, "load_after": load_after, "levels": results})
    text = (f"# persona serve, concurrent clients\n\n{info['cpu']}, {info['cores']} cores; run {run.name};"
            f" load average (1/5/15 min) {load_before} before, {load_after} after.\n\n{table}\n")
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
