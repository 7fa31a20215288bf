"""The job store under ``--data-dir``: ``jobs.sqlite3`` (stdlib SQLite, WAL) and the output files in
``files/``. Outputs are written whole under a temporary name and renamed (``save_output``), and a
job row says ``completed`` only after its files are in place, so a partial file is never served.

File names come from server-generated job ids only; no request field ever becomes a path. One
server per data dir (an exclusive lock on ``lock``); on open, jobs a dead server left ``queued`` or
``running`` become ``failed`` with "server stopped" and partial files are removed."""

from __future__ import annotations

import builtins
import fcntl
import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from omni.sdk import PARTIAL_GLOB, UsageError, save_output

from omni_plugin_serve.errors import ApiError

ID = re.compile(r"job_[0-9a-f]{32}")
ACTIVE = ("queued", "running")
MEDIA = {".png": "image/png", ".mp4": "video/mp4"}
JSON_COLUMNS = ("request", "meta", "artifacts", "events", "report")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    steps_ran INTEGER,
    total INTEGER,
    error TEXT,
    error_code TEXT,
    request TEXT NOT NULL,
    meta TEXT NOT NULL,
    artifacts TEXT NOT NULL DEFAULT '[]',
    events TEXT NOT NULL DEFAULT '[]',
    report TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created, id);
"""


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files = self.root / "files"
        try:
            self.files.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.root / "lock", "a+")  # noqa: SIM115 - held for the process's life
        except OSError as exc:
            raise UsageError(f"--data-dir {self.root}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"--data-dir {self.root} is in use by another omni serve; give each server its own") \
                from None
        try:
            self._db = sqlite3.connect(self.root / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"--data-dir {self.root}: jobs.sqlite3 is not usable ({exc})") from None
        self._mutex = threading.Lock()
        self.recovered = self._recover()

    # ------------------------------------------------------------------ rows
    def _decode(self, row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out = dict(row)
        for col in JSON_COLUMNS:
            out[col] = json.loads(out[col]) if out[col] is not None else None
        return out

    def _write(self, sql: str, values: tuple[Any, ...]) -> int:
        with self._mutex:
            return self._db.execute(sql, values).rowcount

    def insert(self, row: dict[str, Any]) -> None:
        row = {k: json.dumps(v, default=str) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}
        cols = ", ".join(row)
        self._write(f"INSERT INTO jobs ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))

    def update(self, job_id: str, **cols: Any) -> None:
        values = tuple(json.dumps(v, default=str) if k in JSON_COLUMNS and v is not None else v
                       for k, v in cols.items())
        self._write(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in cols)} WHERE id = ?", (*values, job_id))

    def get(self, job_id: str) -> dict[str, Any] | None:
        if not ID.fullmatch(job_id):
            return None
        with self._mutex:
            return self._decode(self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def list(self, *, kind: str | None = None, limit: int = 20, after: str | None = None,
             order: str = "desc") -> tuple[list[dict[str, Any]], bool]:
        """A page of jobs by creation time; ``after`` is the last id of the previous page."""
        where, values = [], []
        if kind is not None:
            where.append("kind = ?")
            values.append(kind)
        if after is not None:
            mark = self.get(after)
            if mark is None:
                raise ApiError(400, f"after: no job {after[:40]!r}", param="after")
            where.append(f"(created, id) {'<' if order == 'desc' else '>'} (?, ?)")
            values.extend((mark["created"], mark["id"]))
        direction = "DESC" if order == "desc" else "ASC"
        sql = (f"SELECT * FROM jobs {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY created {direction}, id {direction} LIMIT ?")
        with self._mutex:
            rows = [self._decode(r) for r in self._db.execute(sql, (*values, limit + 1)).fetchall()]
        return rows[:limit], len(rows) > limit  # type: ignore[return-value]

    def delete(self, job_id: str) -> dict[str, Any] | None:
        row = self.get(job_id)
        if row is None:
            return None
        self._write("DELETE FROM jobs WHERE id = ?", (job_id,))
        for art in row["artifacts"]:
            (self.files / art["file"]).unlink(missing_ok=True)
        return row

    def prune(self, keep: int) -> int:
        """Delete the oldest finished jobs (and files) beyond the ``keep`` newest."""
        with self._mutex:
            old = [r[0] for r in self._db.execute(
                "SELECT id FROM jobs WHERE status NOT IN ('queued', 'running') ORDER BY finished DESC, id DESC "
                "LIMIT -1 OFFSET ?", (keep,)).fetchall()]
        for job_id in old:
            self.delete(job_id)
        return len(old)

    def _recover(self) -> int:
        for partial in self.files.glob(PARTIAL_GLOB):
            partial.unlink(missing_ok=True)
        with self._mutex:
            stale = [self._decode(r) for r in self._db.execute(
                "SELECT * FROM jobs WHERE status IN ('queued', 'running')").fetchall()]
        now = time.time()
        for row in stale:
            assert row is not None
            events = row["events"] + [{"seq": len(row["events"]) + 1, "event": "failed", "time": round(now, 6),
                                       "data": {"error": "server stopped", "steps": row["steps_ran"]}}]
            self.update(row["id"], status="failed", error="server stopped", error_code="server_stopped",
                        finished=now, events=events)
        return len(stale)

    # ------------------------------------------------------------------ files
    def write_outputs(self, job_id: str, output: Any, *, video: bool, fps: int) -> builtins.list[dict[str, Any]]:
        """Write a job's images (PNG) or videos (MP4); returns the artifact records kept in its row."""
        assert ID.fullmatch(job_id), job_id
        ext = ".mp4" if video else ".png"
        records = save_output(output, str(self.files / f"{job_id}{ext}"), video=video, fps=fps)
        out = []
        for i, rec in enumerate(records):
            path = Path(rec["path"])
            out.append({"index": i, "file": path.name, "kind": rec["kind"], "media_type": MEDIA[ext],
                        "width": rec["width"], "height": rec["height"], "frames": rec.get("frames"),
                        "bytes": path.stat().st_size})
        return out

    def file(self, row: dict[str, Any], index: int) -> tuple[Path, str] | None:
        """The path and media type of artifact ``index`` of a job row, when it exists."""
        if not 0 <= index < len(row["artifacts"]):
            return None
        art = row["artifacts"][index]
        path = self.files / art["file"]
        return (path, art["media_type"]) if path.is_file() else None

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        self._lock_file.close()
