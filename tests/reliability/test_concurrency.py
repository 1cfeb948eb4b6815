"""Runs started at the same moment get distinct folders; `latest` is replaced atomically, never missing."""

from __future__ import annotations

import threading
from datetime import datetime

import yaml

from personaforge.train.run import LATEST, Run, point_latest

WORKERS = 8


def _all_at_once(count: int, work) -> list:
    """Run ``work(index)`` in ``count`` threads released together by a barrier; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_runs_created_in_the_same_second_get_distinct_folders(tmp_path):
    when = datetime(2026, 11, 25, 12, 0, 0)
    runs = _all_at_once(WORKERS, lambda i: Run.create(tmp_path, "same", {"model": {"name": f"m{i}"}}, when=when))
    paths = [run.path for run in runs]
    assert len(set(paths)) == WORKERS
    assert sorted(p.name for p in paths) == sorted(["2026-11-25_12-00-00-same"] +
                                                   [f"2026-11-25_12-00-00-same-{n}" for n in range(2, WORKERS + 1)])
    # each folder holds the config of the run that created it, not a neighbour's
    for run in runs:
        name = yaml.safe_load((run.path / "config.yaml").read_text())["model"]["name"]
        assert runs[int(name[1:])].path == run.path
        assert run.status == "running"


def test_latest_is_never_missing_while_runs_finish_together(tmp_path):
    folders = [tmp_path / f"run-{i}" for i in range(WORKERS)]
    for folder in folders:
        folder.mkdir()
    point_latest(folders[0])
    link = tmp_path / LATEST
    stop = threading.Event()
    missing: list[int] = []

    def watch() -> None:
        while not stop.is_set():
            if not link.is_symlink():
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        _all_at_once(WORKERS, lambda i: [point_latest(folders[i]) for _ in range(50)])
    finally:
        stop.set()
        watcher.join()
    assert not missing
    assert link.resolve() in {f.resolve() for f in folders}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{LATEST}")]  # no temporary links left over
    assert "/" not in str(link.readlink())  # relative: the runs folder can move
