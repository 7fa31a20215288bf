"""Jobs as the server sees them: the Engine's jobs under server-generated ids, persisted in the
:class:`~omni_plugin_serve.store.Store`, their events relayed to Server-Sent-Event subscribers.

One Engine listener sees every event: ``queued`` inserts the row, ``started`` marks it running, and a
terminal event (``completed``/``failed``/``cancelled``) first writes the outputs and the final row,
then reaches subscribers and waiters, so whoever hears "completed" can fetch the files."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import secrets
import threading
import time
from contextlib import suppress
from typing import Any

from omni.sdk import UsageError

from omni_plugin_serve.store import Store

log = logging.getLogger("omni.serve")
TERMINAL = ("completed", "failed", "cancelled")


class Live:
    """A job the Engine still holds: its events so far, subscribers, and ``stored`` (set once the
    final row and files are written)."""

    def __init__(self, job_id: str, kind: str, meta: dict[str, Any]) -> None:
        self.id, self.kind, self.meta = job_id, kind, meta
        self.job: Any = None
        self.events: list[dict[str, Any]] = []
        self.stored: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def record(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            item = {"seq": len(self.events) + 1, "event": event, "time": round(time.time(), 6), "data": data}
            self.events.append(item)
        return item

    def deliver(self, item: dict[str, Any]) -> None:
        with self._lock:  # in seq order: one delivery at a time
            for loop, queue in self._subscribers:
                with suppress(RuntimeError):  # that subscriber's loop is closed
                    loop.call_soon_threadsafe(queue.put_nowait, item)

    def subscribe(self) -> tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any]]]:
        """The events so far and a queue of the later ones (no gap, no repeat)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
            return list(self.events), queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s[1] is not queue]


class Jobs:
    def __init__(self, engine: Any, store: Store, metrics: Any, *, keep: int) -> None:
        self.engine, self.store, self.metrics, self.keep = engine, store, metrics, keep
        self.video = engine.family.facts.modality == "video"
        self.live: dict[str, Live] = {}
        self.accepting = True
        engine.listeners.append(self._on_event)

    # ------------------------------------------------------------------ submit / read
    async def submit(self, kind: str, fields: dict[str, Any], meta: dict[str, Any]) -> Live:
        """Enqueue on the Engine under a new id; raises the Engine's refusals (FieldError, QueueFull,
        EngineClosed). An engine whose ``submit`` is a coroutine (omni-plugin-ray's, which validates the
        request on a replica) is awaited."""
        job_id = "job_" + secrets.token_hex(16)
        live = self.live[job_id] = Live(job_id, kind, meta)
        try:
            submitted = self.engine.submit(job_id=job_id, **fields)
            if inspect.isawaitable(submitted):
                await submitted
        except BaseException:
            self.live.pop(job_id, None)
            raise
        return live

    def row(self, job_id: str) -> dict[str, Any] | None:
        """The job's row; while the Engine holds it, with its live status, phase and step. A job whose
        files are still being written reads ``running`` (phase ``writing``), never ``completed``."""
        live = self.live.get(job_id)
        row = self.store.get(job_id)
        if row is not None and live is not None and live.job is not None and row["status"] in ("queued", "running"):
            job = live.job
            running = job.status in TERMINAL
            row.update(status="running" if running else job.status, phase="writing" if running else job.phase,
                       step=job.step, total=job.total, started=job.started, events=list(live.events))
        return row

    # ------------------------------------------------------------------ engine events
    def _on_event(self, job: Any, event: str, data: dict[str, Any]) -> None:
        live = self.live.get(job.id)
        if live is None:
            return
        data = dict(data)
        try:
            if event in TERMINAL:
                item = self._finish(live, job, event, data)
            else:
                item = live.record(event, data)
                if event == "queued":
                    live.job = job
                    self.store.insert({"id": job.id, "kind": live.kind, "model": self.engine.model,
                                       "status": "queued", "created": job.created, "total": job.total,
                                       "request": job.request.to_json(), "meta": live.meta, "events": [item]})
                elif event == "started":
                    self.store.update(job.id, status="running", started=job.started, events=live.events)
        except Exception as exc:  # noqa: BLE001 - the store failing must not stop the Engine's worker
            log.error("job %s: %s event not stored: %s: %s", job.id, event, type(exc).__name__, exc)
            last = live.events[-1] if live.events else None
            item = last if last is not None and last["event"] == event else live.record(event, data)
        live.deliver(item)
        if event in TERMINAL:
            self.live.pop(job.id, None)
            live.stored.set_result(None)

    def _finish(self, live: Live, job: Any, status: str, data: dict[str, Any]) -> dict[str, Any]:
        error, code = job.error, None
        artifacts: list[dict[str, Any]] = []
        report = job.report.to_dict() if job.report is not None else None
        if report is not None and live.meta.get("notes"):  # how the server read the uploads (a mask's convention)
            report["notes"] = [*report.get("notes", []), *live.meta["notes"]]
        if status == "completed":
            t0 = time.perf_counter()
            try:
                output = job.result().output
                artifacts = self.store.write_outputs(job.id, output, video=self.video, fps=live.meta.get("fps", 8))
            except Exception as exc:  # noqa: BLE001 - a full disk fails the job, not the server
                log.error("job %s: %s", job.id, " ".join(str(exc).split()))  # the cause, with server paths
                status, code = "failed", "write_failed"
                error = f"the output could not be written ({type(exc).__name__}); the server log has the cause"
            assert report is not None
            report["timings"]["write"] = round(time.perf_counter() - t0, 6)
            report["artifacts"] = [{"kind": a["kind"], "path": f"files/{a['file']}", "width": a["width"],
                                    "height": a["height"]} for a in artifacts]
            data["artifacts"] = [{"index": a["index"], "kind": a["kind"], "media_type": a["media_type"],
                                  "url": f"/v1/jobs/{job.id}/content?index={a['index']}"} for a in artifacts]
        elif status == "failed":
            code = "invalid_request" if isinstance(job.error_exc, UsageError) else "generation_failed"
            log.warning("job %s failed: %s", job.id, " ".join(str(error).split()))
        if status != "completed":
            data = {"steps": job.steps_ran, **({"error": error} if error else {}),
                    **({"reason": data["reason"]} if "reason" in data else {})}
        item = live.record(status, data)
        finished = job.finished or time.time()
        self.store.update(job.id, status=status, finished=finished, steps_ran=job.steps_ran, total=job.total,
                          error=error, error_code=code, artifacts=artifacts, events=live.events, report=report)
        self.metrics.job(status, finished - job.created, report)
        self.store.prune(self.keep)
        return item

    # ------------------------------------------------------------------ cancel / delete / shutdown
    async def delete(self, job_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Cancel the job if the Engine still holds it (a running one stops within one step), then
        delete its row and files. Returns the final row and the cancellation figures."""
        live = self.live.get(job_id)
        cancel: dict[str, Any] = {}
        if live is not None and live.job is not None:
            at_step, t0 = live.job.step, time.perf_counter()
            live.job.cancel()
            await asyncio.wrap_future(live.stored)
            cancel = {"cancelled_at_step": at_step, "cancel_latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
        row = self.store.delete(job_id)
        return None if row is None else (row, cancel)

    def shutdown(self, timeout: float = 120.0) -> None:
        """Stop accepting, mark queued jobs cancelled, cancel the running one (it stops within one step)
        and wait until every job's final row is written."""
        self.accepting = False
        cancelled = self.engine.close(cancel_running=True, timeout=timeout)
        pending = [live.stored for live in list(self.live.values())]
        concurrent.futures.wait(pending, timeout=timeout)
        log.info("shut down: %d queued job(s) cancelled", len(cancelled))
