"""The Engine: one warm Session, a bounded FIFO queue and one worker thread (a pipeline is not
re-entrant). Jobs carry status, progress, events, a result, and ``cancel()`` (abort between steps).

Written here: diffusers has no request queue; servers and ``omni.run`` both go through this class."""

from __future__ import annotations

import itertools
import queue
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from omni.config import mapping_arg, names_arg
from omni.errors import OmniError
from omni.runtime.execute import Result, run_request
from omni.runtime.observe import Cancelled
from omni.runtime.prompt_cache import PromptCache
from omni.runtime.report import RunReport
from omni.runtime.request import EngineLimits, Request, validate_request
from omni.runtime.session import Prepared, Session, prepare

JobListener = Callable[["Job", str, dict[str, Any]], None]
TERMINAL = ("completed", "failed", "cancelled")


class QueueFull(OmniError):
    """The engine's queue is full; try again later (HTTP 429)."""


class JobCancelled(OmniError):
    """``Job.result()`` of a cancelled job."""


class EngineClosed(OmniError):
    """The engine no longer accepts requests."""


class Job:
    """One request in the engine. ``status``: queued | running | completed | failed | cancelled."""

    def __init__(self, engine: Engine, request: Request, job_id: str | None = None) -> None:
        self.id = job_id or "job_" + secrets.token_hex(8)
        self.engine = engine
        self.request = request
        self.status = "queued"
        self.step = 0
        self.total: int | None = request.args.get("num_inference_steps")
        self.phase = "queued"
        self.error: str | None = None
        self.error_exc: BaseException | None = None
        self.steps_ran: int | None = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.report: RunReport | None = None
        self._result: Result | None = None
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._listeners: list[JobListener] = []
        self._lock = threading.Lock()
        self.events: list[tuple[str, dict[str, Any]]] = []

    # ------------------------------------------------------------------ events
    def subscribe(self, listener: JobListener) -> None:
        """``listener(job, event, data)`` for every later event (events so far are in ``events``)."""
        with self._lock:
            self._listeners.append(listener)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((event, data))
            listeners = list(self._listeners)
        for listener in listeners + list(self.engine.listeners):
            try:
                listener(self, event, data)
            except Exception:  # noqa: BLE001 - a broken listener never breaks a generation
                pass

    @property
    def progress(self) -> float:
        if self.status == "completed":
            return 1.0
        return round(self.step / self.total, 4) if self.total else 0.0

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> bool:
        """Ask the job to stop: a queued job never starts, a running one stops within one denoising
        step. Returns False when the job had already ended."""
        if self.done:
            return False
        self._cancel.set()
        self.engine._cancel_queued(self)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> Result:
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} still {self.status}")
        if self.status == "cancelled":
            raise JobCancelled(f"job {self.id} was cancelled after {self.steps_ran or 0} step(s)")
        if self.status == "failed":
            if isinstance(self.error_exc, OmniError):
                raise self.error_exc
            raise OmniError(self.error or f"job {self.id} failed")
        assert self._result is not None
        return self._result

    def _finish(self, status: str, **data: Any) -> None:
        self.status = status
        self.finished = time.time()
        self._done.set()
        self.emit(status, data)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "phase": self.phase, "step": self.step, "total": self.total,
                "progress": self.progress, "error": self.error, "steps_ran": self.steps_ran,
                "created": self.created, "started": self.started, "finished": self.finished,
                "request": self.request.to_json()}


class Engine:
    """Load and optimize a model once, then serve requests one at a time from a bounded queue.

    ``omni.Engine("tiny-flux", optimize=["teacache"]).generate(prompt="a red circle")``. The
    constructor resolves the model and config and plans (raising ``UsageError`` before anything
    heavy); it loads right away unless ``lazy=True`` (then call :meth:`load`, e.g. in a thread while a
    server reports not-ready).
    """

    _ids = itertools.count(1)

    def __init__(self, model: Any, config: Mapping[str, Any] | None = None, *, optimize: Any = (),
                 sets: Mapping[str, Any] | None = None, preset: str | None = None, strict: bool = False,
                 device: str | None = None, dtype: str | None = None, registry: Any = None,
                 prompt_cache: bool | PromptCache = True, max_queue: int = 16, limits: EngineLimits | None = None,
                 lazy: bool = False, prepared: Prepared | None = None,
                 generation: Mapping[str, Any] | None = None) -> None:
        mapping_arg("config", config)
        mapping_arg("sets", sets)
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.prepared = prepared or prepare(model, config, optimize=names_arg("optimize", optimize),
                                            sets=sets, preset=preset, strict=strict, registry=registry)
        self.device, self.dtype = device, dtype
        self.limits = limits or EngineLimits()
        self.embeddings = prompt_cache if isinstance(prompt_cache, PromptCache) else (
            PromptCache() if prompt_cache else None)
        self.listeners: list[JobListener] = []
        self.session: Session | None = None
        self.load_error: BaseException | None = None
        self._generation = dict(generation) if generation is not None else None
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._queued: dict[str, Job] = {}
        self._running: Job | None = None
        self._accepting = True
        self._worker: threading.Thread | None = None
        self._load_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        if not lazy:
            self.load()

    # ------------------------------------------------------------------ lifecycle
    @property
    def model(self) -> str:
        return self.prepared.resolved.ref

    @property
    def family(self) -> Any:
        return self.prepared.family

    @property
    def load_report(self) -> RunReport:
        return self.prepared.report

    @property
    def ready(self) -> bool:
        return self.session is not None

    @property
    def pipe(self) -> Any:
        return self.session.pipe if self.session is not None else None

    def load(self) -> Session:
        """Load and optimize (once); starts the worker."""
        with self._load_lock:
            if self.session is None:
                try:
                    self.session = Session.load(self.prepared, device=self.device, dtype=self.dtype,
                                                generation=self._generation)
                except BaseException as exc:
                    self.load_error = exc
                    # steps the load never reached are not left "planned" in the load report
                    self.prepared.report.stopped(str(exc) or type(exc).__name__)
                    raise
                self._worker = threading.Thread(target=self._work, name=f"omni-engine-{next(self._ids)}",
                                                daemon=True)
                self._worker.start()
            return self.session

    def close(self, *, cancel_running: bool = True, timeout: float | None = None) -> list[Job]:
        """Stop accepting; cancel queued jobs (returned) and the running one (or let it finish)."""
        self._accepting = False
        cancelled = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and self._queued.pop(job.id, None) is not None:
                job.steps_ran = 0
                job._finish("cancelled", steps=0, reason="engine closed")
                cancelled.append(job)
        running = self._running
        if running is not None and cancel_running:
            running._cancel.set()
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout)
        return cancelled

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def validate(self, **fields: Any) -> Request:
        if self.session is None:
            self.load()
        assert self.session is not None
        return validate_request(self.session, limits=self.limits, **fields)

    def submit(self, prompt: str | None = "", *, job_id: str | None = None, **fields: Any) -> Job:
        """Validate and enqueue a request; raises ``UsageError`` (bad field), ``QueueFull``,
        ``EngineClosed``."""
        if not self._accepting:
            raise EngineClosed("the engine is shutting down and accepts no new request")
        request = self.validate(prompt=prompt, **fields)
        job = Job(self, request, job_id)
        with self._submit_lock:  # "queued" reaches listeners before the worker can emit "started"
            if self._queue.full():
                raise QueueFull(f"the queue is full ({self._queue.maxsize} waiting); try again later")
            self._queued[job.id] = job
            job.emit("queued", {"position": self._queue.qsize() + 1})
            self._queue.put_nowait(job)
        return job

    def generate(self, prompt: str = "", **fields: Any) -> Result:
        """Run one request and wait for it (``submit(...).result()``)."""
        return self.submit(prompt, **fields).result()

    @property
    def queue_depth(self) -> int:
        return len(self._queued)

    @property
    def running(self) -> Job | None:
        return self._running

    def _cancel_queued(self, job: Job) -> None:
        if self._queued.pop(job.id, None) is not None:
            job.steps_ran = 0
            job._finish("cancelled", steps=0)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._queued.pop(job.id, None) is None:  # cancelled while queued: whoever pops it owns it
                continue
            self._running = job
            try:
                self._run(job)
            finally:
                self._running = None

    def _run(self, job: Job) -> None:
        assert self.session is not None
        job.status, job.phase, job.started = "running", "starting", time.time()
        job.emit("started", {"queue_wait_s": round(job.started - job.created, 6)})

        def on_event(name: str, data: dict[str, Any]) -> None:
            if name == "phase":
                job.phase = data["phase"]
                if data.get("total"):
                    job.total = data["total"]
            elif name == "step":
                job.step = data["step"]
                job.total = data.get("total") or job.total
            job.emit(name, data)

        try:
            result = run_request(self.session, job.request, on_event=on_event, cancel=job._cancel,
                                 embeddings=self.embeddings, queue_wait=job.started - job.created)
        except Cancelled as exc:
            job.steps_ran = exc.steps
            job._finish("cancelled", steps=exc.steps)
            return
        except BaseException as exc:  # noqa: BLE001 - a failed job never stops the worker
            job.error = (str(exc) or type(exc).__name__) if isinstance(exc, OmniError) else (
                f"generation failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                .rstrip(": "))
            job.error_exc = exc
            job.report = getattr(exc, "report", None)
            job._finish("failed", error=job.error)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        job.report = result.report
        job._result = result
        job.steps_ran = len(result.report.timings.get("steps", []))
        job.step = job.steps_ran
        job._finish("completed", steps=job.steps_ran)
