"""One engine replica: a Ray Serve deployment whose replicas each hold an ``omni.Engine`` (loaded and
optimized once, in the constructor, so Serve reports a replica healthy only once it can generate).

``run(fields, job_id)`` is a streaming method: it validates and enqueues the request on this replica's
Engine and yields, in order, ``("accepted", info)`` (or ``("refused", why)`` for a request the Engine
refuses: the ingress answers 400/413/429 as ``omni serve`` does), then ``("event", name, data)`` for
each phase and step, then one terminal item (``completed`` with the output and the request report,
``failed``, ``cancelled``). When the ingress cancels the call (a client deleted the job), the Engine job
is cancelled: it stops within one denoising step."""

from __future__ import annotations

import asyncio
from typing import Any

TERMINAL = ("completed", "failed", "cancelled")


def refusal(exc: BaseException) -> dict[str, Any]:
    """An Engine refusal as plain data (``FieldError`` does not survive pickling: its constructor takes
    the field and the message apart)."""
    from omni.sdk import EngineClosed, FieldError, QueueFull

    if isinstance(exc, FieldError):
        message = str(exc)
        return {"kind": "field", "param": exc.param, "status": exc.status,
                "message": message[len(exc.param) + 2:] if message.startswith(exc.param + ": ") else message}
    kind = "queue_full" if isinstance(exc, QueueFull) else "closed" if isinstance(exc, EngineClosed) else "usage"
    return {"kind": kind, "message": str(exc)}


def refused(data: dict[str, Any]) -> BaseException:
    """The Engine's exception again, at the ingress."""
    from omni.sdk import EngineClosed, FieldError, QueueFull, UsageError

    if data["kind"] == "field":
        return FieldError(data["param"], data["message"], status=data["status"])
    return {"queue_full": QueueFull, "closed": EngineClosed}.get(data["kind"], UsageError)(data["message"])


class Replica:
    def __init__(self, model: str, engine_options: dict[str, Any], *, max_queue: int, limits: Any,
                 threads: int) -> None:
        import torch
        from omni.sdk import Engine
        from ray import serve

        torch.set_num_threads(max(1, threads))
        self.name = serve.get_replica_context().replica_id.unique_id
        self.engine = Engine(model, max_queue=max_queue, limits=limits, **engine_options)
        self.streams: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self.engine.listeners.append(self._relay)

    def _relay(self, job: Any, event: str, data: dict[str, Any]) -> None:
        """Engine worker thread -> the stream of that job (on the replica's event loop)."""
        target = self.streams.get(job.id)
        if target is not None:
            loop, queue = target
            loop.call_soon_threadsafe(queue.put_nowait, (event, dict(data)))

    def describe(self) -> dict[str, Any]:
        """The replica's load report (what was applied, skipped and why) and its name."""
        return {"replica": self.name, "load_report": self.engine.load_report}

    async def run(self, fields: dict[str, Any], job_id: str):
        from omni.sdk import OmniError, UsageError

        queue: asyncio.Queue = asyncio.Queue()
        self.streams[job_id] = (asyncio.get_running_loop(), queue)
        job = None
        try:
            try:
                job = self.engine.submit(job_id=job_id, **fields)
            except OmniError as exc:
                yield ("refused", refusal(exc))
                return
            yield ("accepted", {"replica": self.name, "request": job.request, "total": job.total,
                                "created": job.created})
            while True:
                event, data = await queue.get()
                if event == "queued":
                    continue
                if event not in TERMINAL:
                    yield ("event", event, data)
                    continue
                if event == "completed":
                    result = job.result()
                    yield ("completed", {"output": result.output, "report": result.report, "steps": job.steps_ran})
                elif event == "failed":
                    yield ("failed", {"error": job.error, "invalid": isinstance(job.error_exc, UsageError),
                                      "report": job.report, "steps": job.steps_ran})
                else:
                    yield ("cancelled", {"steps": job.steps_ran, **data})
                return
        finally:
            self.streams.pop(job_id, None)
            if job is not None and not job.done:  # the ingress cancelled the call: stop within one step
                job.cancel()
