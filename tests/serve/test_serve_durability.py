"""Durability on one ``--data-dir``: a full queue (429), ``kill -9`` during a job, a restart that
serves the completed jobs and fails the killed ones, then SIGTERM: queued and running jobs end
``cancelled`` and the process exits 0."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

PROMPT = "a red circle on a blue background"


def _wait_running(server, job_id):
    events = server.events(job_id, until=lambda e, d: e == "step" and d["step"] >= 2, timeout=120)
    assert events[-1][0] == "step", events


def test_full_queue_kill9_restart_then_sigterm(start_server, tmp_path):
    data = tmp_path / "data"
    first = start_server("tiny-flux", tmp_path / "first", "--max-queue", "1", data_dir=data)
    done = first.call("POST", "/v1/images/generations", {"prompt": PROMPT, "seed": 5, "response_format": "url"})
    assert done.status == 200
    done_id = done.json()["job_id"]
    png = first.call("GET", f"/v1/jobs/{done_id}/content").body
    running = first.call("POST", "/v1/jobs", {"prompt": PROMPT, "num_inference_steps": 1000}).json()["id"]
    _wait_running(first, running)
    queued = first.call("POST", "/v1/jobs", {"prompt": PROMPT}).json()["id"]

    # a full queue refuses at once: 429, OpenAI's error body, one log line
    before = len(first.log_lines())
    refused = first.call("POST", "/v1/images/generations", {"prompt": PROMPT})
    assert refused.status == 429 and refused.json()["error"]["code"] == "queue_full", refused.body
    assert len(first.log_lines()[before:]) == 1

    (data / "files" / f".{running}.partial-0000.png").write_bytes(b"half a png")  # what a killed writer leaves
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    second = start_server("tiny-flux", tmp_path / "second", data_dir=data)
    job = second.call("GET", f"/v1/jobs/{done_id}").json()
    assert job["status"] == "completed" and job["artifacts"][0]["url"].endswith("index=0")
    assert second.call("GET", f"/v1/jobs/{done_id}/content").body == png
    for job_id in (running, queued):
        killed = second.call("GET", f"/v1/jobs/{job_id}").json()
        assert killed["status"] == "failed" and killed["error"] == {"code": "server_stopped",
                                                                   "message": "server stopped"}, killed
        assert second.events(job_id)[-1] == ("failed", {"job_id": job_id, "event": "failed", "error": "server stopped",
                                                        "steps": None})
    assert not list((data / "files").glob(".*partial*"))
    assert any("2 job(s) left queued or running" in line for line in second.log_lines())

    # SIGTERM: stop accepting, cancel the running job within a step, mark the queued one cancelled, exit 0
    running = second.call("POST", "/v1/jobs", {"prompt": PROMPT, "num_inference_steps": 1000}).json()["id"]
    _wait_running(second, running)
    queued = second.call("POST", "/v1/jobs", {"prompt": PROMPT}).json()["id"]
    t0 = time.monotonic()
    assert second.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 30
    db = sqlite3.connect(data / "jobs.sqlite3")
    rows = {r[0]: (r[1], r[2], json.loads(r[3])) for r in db.execute("SELECT id, status, steps_ran, events FROM jobs")}
    status, steps, events = rows[running]
    assert status == "cancelled" and 2 <= steps < 1000 and events[-1]["event"] == "cancelled"
    assert rows[queued][:2] == ("cancelled", 0)
    assert rows[done_id][0] == "completed"
    assert "Traceback" not in second.log.read_text() + first.log.read_text()
