"""One validated request on a warm Session: the request report (self-contained, linked to the load
report), per-request option changes and their restoration, the generation -> a Result. Shared by the
Engine (``omni serve``, ``omni.run``) and ``Optimized.generate``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omni.errors import OmniError
from omni.runtime import measure
from omni.runtime.observe import EventListener
from omni.runtime.prompt_cache import PromptCache
from omni.runtime.report import RunReport
from omni.runtime.request import KNOWN, Request
from omni.runtime.session import Session


@dataclass
class Result:
    """Output of a generation: ``images`` (N, H, W, C) or ``frames`` (N, F, H, W, C), floats in [0, 1]."""

    report: RunReport
    images: Any = None
    frames: Any = None
    pipe: Any = None

    @property
    def output(self) -> Any:
        return self.frames if self.frames is not None else self.images


def _request_report(session: Session) -> RunReport:
    load = session.report
    report = RunReport(model=load.model, family=load.family, config_requested=copy.deepcopy(load.config_requested),
                       config_resolved=copy.deepcopy(load.config_resolved), notes=list(load.notes),
                       environment=dict(load.environment), device_placement=copy.deepcopy(load.device_placement))
    report.load_run_id = load.run_id
    report.timings["stages"] = dict(load.timings.get("stages", {}))
    report.memory["param_bytes"] = copy.deepcopy(load.memory.get("param_bytes", {}))
    return report


def _apply_options(session: Session, options: dict[str, dict[str, Any]], report: RunReport) -> Callable[[], None]:
    """Reconfigure steps for this request; returns the function restoring the load-time values."""
    restores = []
    try:
        for name, overrides in options.items():
            applied = session.ctx.applied[name]
            result = report.result(name)
            base = dict(result.options) if result is not None else {}
            assert applied.reconfigure is not None
            applied.reconfigure({**base, **overrides})
            restores.append((applied, base))
            if result is not None:
                result.options = {**base, **overrides}
            report.notes.append("per-request options: " + ", ".join(f"{name}.{k}={v}" for k, v in overrides.items()))
    except BaseException:
        for applied, base in reversed(restores):
            applied.reconfigure(base)
        raise

    def restore() -> None:
        for applied, base in reversed(restores):
            applied.reconfigure(base)

    return restore


def run_request(session: Session, request: Request, *, on_event: EventListener | None = None, cancel: Any = None,
                embeddings: PromptCache | None = None, queue_wait: float = 0.0) -> Result:
    """One validated request on a warm session -> a Result with a self-contained request report."""
    from omni.runtime.generate import generate
    from omni.runtime.tasks import input_kwargs, pipeline_for

    report = _request_report(session)
    report.notes.extend(request.notes)
    ctx = session.ctx
    base = ctx.pipe
    inputs: dict[str, Any] = {}
    running = pipeline_for(session, request.task) if request.task else base
    if request.inputs is not None:
        inputs = input_kwargs(running, request.inputs)
    restore = _apply_options(session, request.options, report)
    measure.reset_cuda_peak()
    rss_before = measure.rss_bytes()
    # another task runs its own pipeline class over the same optimized components: during the generation
    # ctx.pipe is the pipeline running, for the observer and for steps that read the pipeline at call time
    ctx.pipe = running
    try:
        out = generate(ctx, report, request.prompt, dict(request.args), seed=request.seed, inputs=inputs,
                       on_event=on_event, cancel=cancel, embeddings=embeddings,
                       embeddings_key=tuple(sorted((n, tuple(sorted(o.items()))) for n, o in request.options.items())))
    except OmniError as exc:
        report.error = str(exc)
        exc.report = report  # type: ignore[attr-defined]
        raise
    finally:
        ctx.pipe = base
        restore()
    # a step's details may be filled during the generation (MagCache calibration records what it measured)
    for name, applied in session.ctx.applied.items():
        res = report.result(name)
        if res is not None:
            res.details.update(copy.deepcopy(applied.details))
    report.timings["queue_wait"] = round(queue_wait, 6)
    report.timings["total"] = round(queue_wait + report.timings["generate"], 6)
    report.memory.update({"rss_before_generate": rss_before, "rss_after_generate": measure.rss_bytes(),
                          "peak_rss_bytes": measure.peak_rss_bytes()})
    cuda = measure.cuda_peaks()
    if cuda is not None:
        report.memory["cuda_peak_generate"] = cuda
    if request.task:
        report.generation["task"] = request.task
        report.generation["pipeline"] = type(running).__name__
        if request.inputs is not None:
            report.generation.update(request.inputs.describe())
    video = out.ndim == 5
    return Result(report=report, frames=out if video else None, images=None if video else out, pipe=running)


def request_fields(generation: Mapping[str, Any]) -> dict[str, Any]:
    """Split generation keyword arguments into request fields and pipeline ``extra`` arguments."""
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in generation.items():
        if value is None:
            continue
        if key in KNOWN:
            fields[key] = value
        else:
            extra[key] = value
    if extra:
        fields["extra"] = {**fields.get("extra", {}), **extra}
    return fields
