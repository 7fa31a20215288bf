"""JSON shapes of a job row: omni's job object, OpenAI's video object, the trace, list pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omni_plugin_serve.fields import FPS

VIDEO_STATUS = {"running": "in_progress"}  # OpenAI's name; the rest are the same words


def progress(row: dict[str, Any]) -> float:
    if row["status"] == "completed":
        return 1.0
    step = row.get("step", row["steps_ran"] or 0)
    return round(step / row["total"], 4) if row["total"] else 0.0


def inference_time(row: dict[str, Any]) -> float | None:
    report = row["report"]
    if report and "generate" in report["timings"]:
        return report["timings"]["generate"]
    if row["started"] and row["finished"]:
        return round(row["finished"] - row["started"], 6)
    return None


def error(row: dict[str, Any]) -> dict[str, Any] | None:
    return {"code": row["error_code"] or "error", "message": row["error"]} if row["error"] else None


def job_object(row: dict[str, Any]) -> dict[str, Any]:
    base = f"/v1/jobs/{row['id']}"
    return {
        "id": row["id"], "object": "job", "kind": row["kind"], "model": row["model"], "status": row["status"],
        "phase": row.get("phase", row["status"]), "step": row.get("step", row["steps_ran"] or 0),
        "total": row["total"], "progress": progress(row), "steps_ran": row["steps_ran"],
        "created_at": row["created"], "started_at": row["started"], "finished_at": row["finished"],
        "inference_time_s": inference_time(row), "error": error(row), "request": row["request"],
        "artifacts": [{k: a[k] for k in ("index", "kind", "media_type", "width", "height", "frames", "bytes")}
                      | {"url": f"{base}/content?index={a['index']}"} for a in row["artifacts"]],
        "links": {"self": base, "events": f"{base}/events", "trace": f"{base}/trace"},
    }


def video_object(row: dict[str, Any]) -> dict[str, Any]:
    req, meta = row["request"], row["meta"]
    frames, fps = req.get("num_frames"), meta.get("fps", FPS)
    return {
        "id": row["id"], "object": "video", "created_at": int(row["created"]),
        "status": VIDEO_STATUS.get(row["status"], row["status"]), "progress": int(round(100 * progress(row))),
        "model": row["model"], "prompt": req["prompt"],
        "seconds": meta.get("seconds") or (f"{frames / fps:g}" if frames else None),
        "size": f"{req['width']}x{req['height']}" if "width" in req and "height" in req else None,
        "completed_at": int(row["finished"]) if row["status"] == "completed" else None, "expires_at": None,
        "error": error(row), "inference_time_s": inference_time(row), "num_frames": frames, "fps": fps,
        "num_inference_steps": req.get("num_inference_steps"), "seed": req["seed"], "steps_ran": row["steps_ran"],
    }


def trace(row: dict[str, Any]) -> dict[str, Any]:
    """The timeline: queue wait, encode, each step with its computed/reused denoiser calls, the VAE
    decode, write. From the request report when the job completed; from the events of a job that
    did not (the steps that ran)."""
    report = row["report"] or {}
    timings = report.get("timings", {})
    events = row["events"]
    started: dict[str, Any] = next((e["data"] for e in events if e["event"] == "started"), {})
    timeline: list[dict[str, Any]] = []
    wait = timings.get("queue_wait", started.get("queue_wait_s"))
    if wait is not None:
        timeline.append({"stage": "queue_wait", "seconds": wait})
    if "encode" in timings:
        timeline.append({"stage": "encode", "seconds": timings["encode"]})
    caches = [h for h in report.get("cache_hits", []) if h["method"] != "text_embedding"]
    if "steps" in timings:
        for i, seconds in enumerate(timings["steps"]):
            per = {h["method"]: {k: h["steps"][i][k] for k in ("computed", "reused")}
                   for h in caches if i < len(h["steps"])}
            timeline.append({"stage": "step", "index": i, "seconds": seconds,
                             "computed": sum(c["computed"] for c in per.values()),
                             "reused": sum(c["reused"] for c in per.values()), "caches": per})
    else:
        for e in events:
            if e["event"] == "step":
                d = e["data"]
                timeline.append({"stage": "step", "index": d["step"] - 1, "seconds": d.get("seconds"),
                                 "computed": d.get("computed", 0), "reused": d.get("reused", 0), "caches": {}})
    for stage in ("vae_decode", "write"):  # the request report's names (docs/report.md)
        if stage in timings:
            timeline.append({"stage": stage, "seconds": timings[stage]})
    embedding = next((h for h in report.get("cache_hits", []) if h["method"] == "text_embedding"), None)
    return {
        "id": row["id"], "object": "job.trace", "status": row["status"], "model": row["model"],
        "run_id": report.get("run_id"), "load_run_id": report.get("load_run_id"), "timeline": timeline,
        "total_s": sum(t["seconds"] or 0 for t in timeline),
        "prompt_embedding_cache": None if embedding is None else {"hits": embedding["reused"],
                                                                   "misses": embedding["computed"]},
        "report": report or None,
    }


def page(rows: list[dict[str, Any]], has_more: bool, view: Callable[[dict[str, Any]], dict[str, Any]]) -> dict:
    """OpenAI's list shape (cursor: ``after`` = ``last_id``)."""
    return {"object": "list", "data": [view(r) for r in rows], "has_more": has_more,
            "first_id": rows[0]["id"] if rows else None, "last_id": rows[-1]["id"] if rows else None}
