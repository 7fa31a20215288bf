"""OpenAI-shaped routes: Images (synchronous), Videos (asynchronous jobs, OpenAI's and vLLM-Omni's
fields, an image reference for image-to-video), Models. Every request becomes a job of the job API
(``/v1/jobs/{id}``). Image edits are in :mod:`.routes_inputs`."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from omni_plugin_serve import views
from omni_plugin_serve.app import read_body, state_of
from omni_plugin_serve.errors import ApiError
from omni_plugin_serve.fields import Submission, image_request, video_request
from omni_plugin_serve.routes_jobs import content, deleted, finished_row, job_row

router = APIRouter()


def check_modality(request: Request, want_video: bool) -> None:
    state = state_of(request)
    if state.jobs.video != want_video:
        other = "POST /v1/videos" if state.jobs.video else "POST /v1/images/generations"
        kind = "video" if state.jobs.video else "images"
        raise ApiError(400, f"model: {state.engine.model} makes {kind}; use {other}", param="model",
                       code="wrong_modality")


@router.post("/v1/images/generations")
async def images_generations(request: Request) -> dict[str, Any]:
    state = state_of(request)
    check_modality(request, want_video=False)
    return await images_response(request, image_request(await read_body(request), state.engine.model))


async def images_response(request: Request, sub: Submission) -> dict[str, Any]:
    """Run an images request to its end -> OpenAI's images response (``data``: b64_json or url), with ``job_id``."""
    state = state_of(request)
    live = await state.submit("image", sub)
    await asyncio.wrap_future(live.stored)
    row = finished_row(state, live.id)
    data = []
    for art in row["artifacts"]:
        if sub.meta["response_format"] == "url":
            data.append({"url": str(request.base_url).rstrip("/") + f"/v1/jobs/{row['id']}/content?index={art['index']}"})
        else:
            found = state.store.file(row, art["index"])
            if found is None:
                raise ApiError(404, f"job {row['id']}: output {art['index']} is gone (deleted?)", code="not_found")
            data.append({"b64_json": base64.b64encode(found[0].read_bytes()).decode("ascii")})
    return {"created": int(row["finished"]), "data": data, "job_id": row["id"]}


@router.post("/v1/videos")
async def videos_create(request: Request) -> dict[str, Any]:
    state = state_of(request)
    check_modality(request, want_video=True)
    sub = video_request(await read_body(request), state.engine.model, state.engine.prepared.limits,
                        prompt=state.takes_prompt is not False)
    live = await state.submit("video", sub)
    return views.video_object(job_row(state, live.id))


@router.get("/v1/videos")
async def videos_list(request: Request, after: str | None = None, limit: int = Query(20, ge=1, le=100),
                      order: str = Query("desc", pattern="^(asc|desc)$")) -> dict[str, Any]:
    rows, more = state_of(request).store.list(kind="video", limit=limit, after=after, order=order)
    return views.page(rows, more, views.video_object)


@router.get("/v1/videos/{video_id}")
async def videos_retrieve(request: Request, video_id: str) -> dict[str, Any]:
    return views.video_object(job_row(state_of(request), video_id, kind="video"))


@router.get("/v1/videos/{video_id}/content")
async def videos_content(request: Request, video_id: str, variant: str = "video") -> FileResponse:
    if variant != "video":
        raise ApiError(400, f"variant: omni serves the video only, not {variant[:40]!r}", param="variant",
                       code="invalid_value")
    return content(state_of(request), video_id, 0, kind="video")


@router.delete("/v1/videos/{video_id}")
async def videos_delete(request: Request, video_id: str) -> dict[str, Any]:
    return await deleted(state_of(request), video_id, "video")


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    state = state_of(request)
    engine = state.engine
    results = engine.load_report.config_resolved
    limits = engine.limits
    entry = {
        "id": engine.model, "object": "model", "created": int(state.started), "owned_by": "omni",
        "family": engine.family.name, "modality": engine.family.facts.modality, "ready": engine.ready,
        "tasks": list(engine.family.facts.tasks), "takes_prompt": state.takes_prompt,
        "optimizations": {status: [{"name": r.name, "reason": r.reason} if r.reason else {"name": r.name}
                                   for r in results if r.status == status]
                          for status in ("applied", "skipped", "failed", "planned")},
        "defaults": {k: v for k, v in engine.prepared.generation_defaults().items()
                     if isinstance(v, (int, float, str, bool))},
        "limits": {"max_size": limits.max_size, "max_steps": limits.max_steps, "max_n": limits.max_n,
                   "max_frames": limits.max_frames},
    }
    return {"object": "list", "data": [entry]}
