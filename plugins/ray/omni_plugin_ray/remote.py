"""The ingress's engine: what ``omni serve``'s app needs of an ``omni.Engine`` (model, family, plan,
limits, ``submit``, listeners, ``close``), with every generation on a replica of the Ray Serve
deployment. The job store, the output files and the metrics stay with the ingress, so a job outlives the
replica that ran it: a replica that dies mid-job fails that job with the reason, and the others go on.

The model's plan, family and limits come from a lazy ``Engine`` here that never loads; the load report
(what was applied on the replicas) comes from a replica."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from omni_plugin_ray.replica import TERMINAL, refused

log = logging.getLogger("omni.serve")


class RemoteResult:
    def __init__(self, output: Any, report: Any) -> None:
        self.output, self.report = output, report


class RemoteJob:
    """A job as the serve app reads it (``id``, ``status``, ``phase``, ``step``, ``total``, ``created``,
    ``started``, ``finished``, ``error``, ``error_exc``, ``report``, ``steps_ran``, ``request``,
    ``result()``, ``cancel()``), fed from the replica's stream; ``replica`` names the replica."""

    def __init__(self, engine: RemoteEngine, job_id: str, info: dict[str, Any]) -> None:
        self.engine, self.id = engine, job_id
        self.replica: str = info["replica"]
        self.request, self.total, self.created = info["request"], info["total"], info["created"]
        self.status, self.phase, self.step = "queued", "queued", 0
        self.started: float | None = None
        self.finished: float | None = None
        self.error: str | None = None
        self.error_exc: BaseException | None = None
        self.report: Any = None
        self.steps_ran: int | None = None
        self._result: RemoteResult | None = None
        self.task: asyncio.Task | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def result(self) -> RemoteResult:
        assert self._result is not None, f"job {self.id} is {self.status}"
        return self._result

    def cancel(self) -> bool:
        """Cancel the replica call; the replica cancels its Engine job (within one step)."""
        if self.done or self.task is None:
            return False
        self.task.get_loop().call_soon_threadsafe(self.task.cancel)  # Jobs.shutdown calls from a thread
        return True

    def apply(self, event: str, data: dict[str, Any]) -> None:
        if event == "started":
            self.status, self.phase, self.started = "running", "starting", time.time()
        elif event == "phase":
            self.phase = data["phase"]
            self.total = data.get("total") or self.total
        elif event == "step":
            self.step, self.total = data["step"], data.get("total") or self.total


class RemoteEngine:
    def __init__(self, local: Any, handle: Any, load_report: Any,
                 on_job: Callable[[RemoteJob, str], None] | None = None) -> None:
        """``on_job(job, "accepted" | final status)``: per-replica bookkeeping (the ingress's metrics)."""
        self.local, self.handle, self.load_report = local, handle, load_report
        self.listeners: list[Callable[[Any, str, dict[str, Any]], None]] = []
        self.load_error: BaseException | None = None
        self.jobs: dict[str, RemoteJob] = {}
        self.accepting = True
        self.on_job = on_job

    # what the serve app reads of an Engine
    model = property(lambda self: self.local.model)
    family = property(lambda self: self.local.family)
    prepared = property(lambda self: self.local.prepared)
    limits = property(lambda self: self.local.limits)
    ready = property(lambda self: True)  # the ingress starts once the replicas are up
    queue_depth = property(lambda self: sum(1 for j in self.jobs.values() if j.status == "queued"))
    running = property(lambda self: next((j for j in self.jobs.values() if j.status == "running"), None))

    async def submit(self, prompt: str = "", *, job_id: str, **fields: Any) -> RemoteJob:
        """Validate and enqueue on a replica (Ray Serve picks the least loaded of two); raises the Engine's
        refusals as ``omni serve`` does, ``EngineClosed`` when no replica can take it."""
        from omni.sdk import EngineClosed

        if not self.accepting:
            raise EngineClosed("the server is shutting down and accepts no new request")
        stream = self.handle.options(stream=True).run.remote({"prompt": prompt, **fields}, job_id)
        try:
            first = await stream.__anext__()
        except Exception as exc:  # noqa: BLE001 - Ray's errors: no replica, back pressure, a replica died
            raise _unavailable(exc) from None
        if first[0] == "refused":
            raise refused(first[1])
        job = self.jobs[job_id] = RemoteJob(self, job_id, first[1])
        if self.on_job is not None:
            self.on_job(job, "accepted")
        await self._emit(job, "queued", {"position": self.queue_depth, "replica": job.replica})
        job.task = asyncio.create_task(self._follow(job, stream))
        return job

    async def _emit(self, job: RemoteJob, event: str, data: dict[str, Any]) -> None:
        """Listeners write rows and files: off the event loop, one event at a time (in order)."""
        for listener in list(self.listeners):
            try:
                await asyncio.to_thread(listener, job, event, data)
            except Exception as exc:  # noqa: BLE001 - a broken listener never stops a job
                log.error("job %s: listener failed on %s: %s: %s", job.id, event, type(exc).__name__, exc)

    async def _follow(self, job: RemoteJob, stream: Any) -> None:
        try:
            async for item in stream:
                if item[0] == "event":
                    job.apply(item[1], item[2])
                    data = {**item[2], "replica": job.replica} if item[1] == "started" else item[2]
                    await self._emit(job, item[1], data)
                else:
                    await self._end(job, item[0], item[1])
                    return
            await self._end(job, "failed", {"error": f"replica {job.replica} ended the job without a result"})
        except asyncio.CancelledError:
            stream.cancel()
            await self._end(job, "cancelled", {"steps": job.step})
        except Exception as exc:  # noqa: BLE001 - the replica died or Ray failed: this job only
            await self._end(job, "failed", {"error": _failure(job, exc)})

    async def _end(self, job: RemoteJob, status: str, data: dict[str, Any]) -> None:
        from omni.sdk import OmniError, UsageError

        job.status, job.finished = status, time.time()
        job.steps_ran = data.get("steps", job.step if status != "completed" else None)
        job.report = data.get("report")
        if status == "completed":
            job._result = RemoteResult(data["output"], data["report"])
        elif status == "failed":
            job.error = data["error"]
            job.error_exc = (UsageError if data.get("invalid") else OmniError)(job.error)
        self.jobs.pop(job.id, None)
        if self.on_job is not None:
            self.on_job(job, status)
        event = {"steps": job.steps_ran, **({"error": job.error} if job.error else {})}
        await self._emit(job, status, event)

    def close(self, *, cancel_running: bool = True, timeout: float | None = None) -> list[RemoteJob]:
        """Stop accepting and cancel every job (their replicas stop them within one step)."""
        self.accepting = False
        queued = [job for job in self.jobs.values() if job.status == "queued"]
        for job in list(self.jobs.values()):
            if cancel_running or job.status == "queued":
                job.cancel()
        return queued


def _unavailable(exc: BaseException) -> BaseException:
    from omni.sdk import EngineClosed, QueueFull

    name = type(exc).__name__
    if "BackPressure" in name:
        return QueueFull(f"every replica's queue is full; try again later ({name})")
    return EngineClosed(f"no replica could take the request ({name}: {' '.join(str(exc).split())[:200]})")


def _failure(job: RemoteJob, exc: BaseException) -> str:
    from ray import exceptions

    name = type(exc).__name__
    if isinstance(exc, (exceptions.RayActorError, exceptions.ActorUnavailableError)):
        return f"replica {job.replica} died while running this job ({name}); Ray Serve starts a new replica"
    return f"replica {job.replica} failed: {name}: {' '.join(str(exc).split())[:300]}"
