"""omni's own routes: the job API (submit, read, cancel/delete, trace, Server-Sent Events, content),
``/metrics``, and the public ones: health and the playground page."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)

from omni_plugin_serve import views
from omni_plugin_serve.app import State, read_body, state_of
from omni_plugin_serve.errors import ApiError, error_response
from omni_plugin_serve.fields import job_request
from omni_plugin_serve.jobs import TERMINAL
from omni_plugin_serve.metrics import CONTENT_TYPE

router = APIRouter()
public = APIRouter()
KEEPALIVE_S = 15.0


# ---------------------------------------------------------------------------- shared by the OpenAI routes
def job_row(state: State, job_id: str, kind: str | None = None) -> dict[str, Any]:
    row = state.jobs.row(job_id)
    if row is None or (kind is not None and row["kind"] != kind):
        raise ApiError(404, f"no {kind or 'job'} {job_id[:60]!r}", param="id", code="not_found")
    return row


def finished_row(state: State, job_id: str) -> dict[str, Any]:
    """The row of a job that ended: completed, or its failure as an error response."""
    row = state.store.get(job_id)
    if row is None:
        raise ApiError(404, f"job {job_id} was deleted before it finished", code="not_found")
    if row["status"] == "cancelled":
        if not state.jobs.accepting:
            raise ApiError(503, f"job {job_id} was cancelled: the server is shutting down", code="shutting_down")
        raise ApiError(409, f"job {job_id} was cancelled after {row['steps_ran'] or 0} step(s)", code="cancelled")
    if row["status"] == "failed":
        status = 400 if row["error_code"] == "invalid_request" else 500
        raise ApiError(status, f"job {job_id} failed: {row['error']}", code=row["error_code"])
    return row


def content(state: State, job_id: str, index: int, kind: str | None = None) -> FileResponse:
    row = job_row(state, job_id, kind)
    if row["status"] != "completed":
        raise ApiError(409, f"job {job_id} is {row['status']}, not completed: no content yet", code="not_completed")
    found = state.store.file(row, index)
    if found is None:
        raise ApiError(404, f"job {job_id} has no output {index}", param="index", code="not_found")
    path, media_type = found
    return FileResponse(path, media_type=media_type, filename=f"{job_id}-{index}{path.suffix}")


async def deleted(state: State, job_id: str, kind: str) -> dict[str, Any]:
    job_row(state, job_id, None if kind == "job" else kind)
    result = await state.jobs.delete(job_id)
    if result is None:
        raise ApiError(404, f"no {kind} {job_id[:60]!r}", param="id", code="not_found")
    row, cancel = result
    return {"id": job_id, "object": f"{kind}.deleted", "deleted": True, "status": row["status"],
            "steps_ran": row["steps_ran"], **cancel}


# ---------------------------------------------------------------------------- job API
@router.post("/v1/jobs")
async def jobs_create(request: Request) -> dict[str, Any]:
    state = state_of(request)
    sub = job_request(await read_body(request), state.jobs.video, prompt=state.takes_prompt is not False)
    live = await state.submit("video" if state.jobs.video else "image", sub)
    return views.job_object(job_row(state, live.id))


@router.get("/v1/jobs")
async def jobs_list(request: Request, after: str | None = None, limit: int = Query(20, ge=1, le=100),
                    order: str = Query("desc", pattern="^(asc|desc)$")) -> dict[str, Any]:
    rows, more = state_of(request).store.list(limit=limit, after=after, order=order)
    return views.page(rows, more, views.job_object)


@router.get("/v1/jobs/{job_id}")
async def jobs_retrieve(request: Request, job_id: str) -> dict[str, Any]:
    return views.job_object(job_row(state_of(request), job_id))


@router.delete("/v1/jobs/{job_id}")
async def jobs_delete(request: Request, job_id: str) -> dict[str, Any]:
    return await deleted(state_of(request), job_id, "job")


@router.get("/v1/jobs/{job_id}/trace")
async def jobs_trace(request: Request, job_id: str) -> dict[str, Any]:
    return views.trace(job_row(state_of(request), job_id))


@router.get("/v1/jobs/{job_id}/content")
async def jobs_content(request: Request, job_id: str, index: int = Query(0, ge=0)) -> FileResponse:
    return content(state_of(request), job_id, index)


def _sse(job_id: str, item: dict[str, Any]) -> str:
    data = json.dumps({"job_id": job_id, "event": item["event"], **item["data"]}, default=str)
    return f"id: {item['seq']}\nevent: {item['event']}\ndata: {data}\n\n"


@router.get("/v1/jobs/{job_id}/events")
async def jobs_events(request: Request, job_id: str) -> StreamingResponse:
    """Server-Sent Events: queued, started, phase, step (i of n), then completed | failed | cancelled.
    A finished job's events are replayed from its row."""
    state = state_of(request)
    live = state.jobs.live.get(job_id)
    if live is not None:
        backlog, queue = live.subscribe()
    else:
        backlog, queue = job_row(state, job_id)["events"], None

    async def stream():
        seq = 0  # an event recorded while subscribing is both in the backlog and queued: send it once
        try:
            for item in backlog:
                seq = item["seq"]
                yield _sse(job_id, item)
                if item["event"] in TERMINAL:
                    return
            while queue is not None:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item["seq"] <= seq:
                    continue
                seq = item["seq"]
                yield _sse(job_id, item)
                if item["event"] in TERMINAL:
                    return
        finally:
            if queue is not None:
                live.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(state_of(request).metrics.render(), media_type=CONTENT_TYPE)


# ---------------------------------------------------------------------------- public
@public.get("/health/live")
async def health_live() -> dict[str, str]:
    return {"status": "ok"}


@public.get("/health/ready", response_model=None)
async def health_ready(request: Request) -> dict[str, str] | JSONResponse:
    """200 when requests are served; 503 (error body, no log line: probes poll it) while loading
    or shutting down."""
    state = state_of(request)
    try:
        if not state.jobs.accepting:
            raise ApiError(503, "the server is shutting down", code="shutting_down")
        state.check_ready()
    except ApiError as exc:
        return error_response(exc.status, exc.message, code=exc.code, where=None)
    return {"status": "ready", "model": state.engine.model}


@public.get("/", response_class=HTMLResponse)
async def playground() -> HTMLResponse:
    return HTMLResponse(resources.files("omni_plugin_serve").joinpath("playground.html").read_text("utf-8"))
