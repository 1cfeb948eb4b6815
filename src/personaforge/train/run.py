"""Run folders: outputs/runs/<YYYY-mm-dd_HH-MM-SS>-<config>[-N]/ with config, env, data, status, adapter, logs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text, display_path, dumps_json

RUNNING, FINISHED, FAILED, INTERRUPTED, STALE = "running", "finished", "failed", "interrupted", "stale"
SECRET_KEY = re.compile(r"(^|_)(token|secret|password|api_?key)$", re.IGNORECASE)  # not max_new_tokens
LATEST = "latest"


def redact(value):
    """Config values under secret-looking keys are never written to disk."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if SECRET_KEY.search(str(k)) and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Run:
    path: Path

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, runs_dir: Path, name: str, config: dict, when: datetime | None = None) -> "Run":
        """A new, distinct folder even when two runs start in the same second."""
        stamp = (when or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
        base = f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-') or 'run'}"
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PersonaForgeError(f"output.dir: cannot create {display_path(runs_dir)} ({exc.strerror});"
                                    " choose a writable folder") from None
        for attempt in range(1000):
            path = runs_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                path.mkdir()  # atomic: exactly one process gets each name
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise PersonaForgeError(f"output.dir: cannot write in {display_path(runs_dir)} ({exc.strerror})") from None
        else:  # pragma: no cover
            raise PersonaForgeError(f"output.dir: too many runs named {base}")
        run = cls(path)
        atomic_write_text(path / "config.yaml", yaml.safe_dump(redact(config), sort_keys=False, allow_unicode=True))
        run.set_status(RUNNING)
        return run

    # ------------------------------------------------------------------ files
    def write_json(self, name: str, data: dict) -> None:
        atomic_write_text(self.path / name, dumps_json(data))

    def read_json(self, name: str) -> dict:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict:
        try:
            return yaml.safe_load((self.path / "config.yaml").read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise PersonaForgeError(f"{display_path(self.path)}: not a run folder (no config.yaml)") from None

    def train_config(self):
        """The run's resolved config as a TrainConfig (errors name the run's config.yaml)."""
        from personaforge.config import TrainConfig, validate_config

        return validate_config(TrainConfig, self.config, label=display_path(self.path / "config.yaml"))

    def require_finished(self, action: str) -> None:
        """Merge and eval need a finished run with an adapter."""
        status = self.status
        if status != FINISHED:
            hint = f" (resume it with persona train --resume {self.name})" if status != FAILED else ""
            raise PersonaForgeError(f"run {self.name} is {status}; only a finished run can be {action}{hint}")
        if not (self.adapter_dir / "adapter_config.json").exists():
            raise PersonaForgeError(f"run {self.name} has no adapter ({display_path(self.adapter_dir)}); train it again")

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    # ------------------------------------------------------------------ status
    def set_status(self, status: str, message: str | None = None) -> None:
        record = self.read_json("status.json")
        record.update({"status": status, "pid": os.getpid(), "host": socket.gethostname(),
                       "updated": datetime.now().isoformat(timespec="seconds")})
        record.setdefault("started", record["updated"])
        if message is not None:
            record["message"] = message
        elif status in (RUNNING, FINISHED):
            record.pop("message", None)
        self.write_json("status.json", record)

    @property
    def status(self) -> str:
        record = self.read_json("status.json")
        status = record.get("status", FAILED)
        if status == RUNNING and record.get("host") == socket.gethostname() and not _pid_alive(int(record.get("pid", 0))):
            return STALE  # killed outright: resumable
        return status

    @property
    def message(self) -> str | None:
        return self.read_json("status.json").get("message")

    def finish(self, metrics: dict) -> None:
        self.write_json("train_metrics.json", metrics)
        self.set_status(FINISHED)
        point_latest(self.path)

    def last_checkpoint(self) -> Path | None:
        if not self.checkpoints_dir.is_dir():
            return None
        found = []
        for child in self.checkpoints_dir.iterdir():
            match = re.fullmatch(r"checkpoint-(\d+)", child.name)
            if match and (child / "trainer_state.json").exists():
                found.append((int(match.group(1)), child))
        return max(found)[1] if found else None


def point_latest(path: Path) -> None:
    """Replace runs_dir/latest atomically (a new symlink renamed over the old one)."""
    link = path.parent / LATEST
    tmp = path.parent / f".{LATEST}.{os.getpid()}.{time.monotonic_ns()}"
    os.symlink(path.name, tmp)
    os.replace(tmp, link)


def resolve_run(spec: str, runs_dir: Path = Path("outputs/runs")) -> Run:
    """RUN is a run folder path, a run name under runs_dir, or 'latest'."""
    candidates = [Path(spec), runs_dir / spec]
    for path in candidates:
        if (path / "config.yaml").exists() or (path / "status.json").exists():
            return Run(path.resolve())
    if spec == LATEST:
        raise PersonaForgeError(f"no finished run yet ({display_path(runs_dir / LATEST)} does not exist); train one first")
    raise PersonaForgeError(f"run '{spec}' not found (looked for a folder, or a name under {display_path(runs_dir)});"
                            " see persona runs list")


def list_runs(runs_dir: Path) -> list[Run]:
    if not runs_dir.is_dir():
        return []
    runs = [Run(p) for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / "status.json").exists()]
    return sorted(runs, key=lambda r: r.name)


def remove_run(run: Run) -> None:
    if run.status == RUNNING:
        raise PersonaForgeError(f"run {run.name} is still running (pid {run.read_json('status.json').get('pid')});"
                                " stop it first")
    latest = run.path.parent / LATEST
    if latest.is_symlink() and latest.resolve() == run.path.resolve():
        latest.unlink()
    shutil.rmtree(run.path)
