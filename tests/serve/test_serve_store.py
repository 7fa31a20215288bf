"""The job store and the atomic output writer, without a server."""

from __future__ import annotations

import secrets

import numpy as np
import pytest
from omni.sdk import OmniError, UsageError, save_output
from omni_plugin_serve.errors import ApiError
from omni_plugin_serve.store import Store


def _id() -> str:
    return "job_" + secrets.token_hex(16)


def _row(job_id: str, created: float, status: str = "queued") -> dict:
    return {"id": job_id, "kind": "image", "model": "m", "status": status, "created": created,
            "request": {"prompt": "p"}, "meta": {}, "events": [{"seq": 1, "event": "queued", "data": {}}]}


def test_save_output_writes_whole_files_or_nothing(tmp_path, monkeypatch):
    images = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    records = save_output(images, str(tmp_path / "a.png"), video=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-0.png", "a-1.png"]
    assert [r["width"] for r in records] == [8, 8]

    from PIL import Image

    def half_written(self, fp, *args, **kwargs):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_written)
    with pytest.raises(OmniError, match="disk full"):
        save_output(images[:1], str(tmp_path / "b.png"), video=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-0.png", "a-1.png"]  # no b.png, no partial


def test_store_recovers_pages_prunes_and_locks(tmp_path):
    store = Store(tmp_path)
    done, running, queued = _id(), _id(), _id()
    store.insert(_row(done, 1.0))
    store.update(done, status="completed", finished=2.0,
                 artifacts=store.write_outputs(done, np.zeros((1, 8, 8, 3)), video=False, fps=8))
    store.insert(_row(running, 3.0, "running"))
    store.insert(_row(queued, 4.0))
    with pytest.raises(UsageError, match="in use by another omni serve"):
        Store(tmp_path)
    store.close()
    (tmp_path / "files" / f".{running}.partial-beef.png").write_bytes(b"x")

    store = Store(tmp_path)
    assert store.recovered == 2
    assert not list((tmp_path / "files").glob(".*"))
    for job_id in (running, queued):
        row = store.get(job_id)
        assert (row["status"], row["error"], row["error_code"]) == ("failed", "server stopped", "server_stopped")
        assert [e["event"] for e in row["events"]] == ["queued", "failed"]
    row = store.get(done)
    path, media = store.file(row, 0)
    assert media == "image/png" and path.read_bytes()[:4] == b"\x89PNG"
    assert store.file(row, 1) is None

    page, more = store.list(limit=2)
    assert [r["id"] for r in page] == [queued, running] and more
    page, more = store.list(limit=2, after=running)
    assert [r["id"] for r in page] == [done] and not more
    assert [r["id"] for r in store.list(order="asc")[0]] == [done, running, queued]
    with pytest.raises(ApiError, match="after"):
        store.list(after="job_" + "0" * 32)

    assert store.prune(keep=2) == 1  # the oldest finished job goes, with its file
    assert store.get(done) is None and not path.exists()
    assert store.get("../jobs.sqlite3") is None and store.get("job_../../x") is None
    store.close()
