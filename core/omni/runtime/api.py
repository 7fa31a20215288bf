"""Python API: ``omni.run``, ``omni.optimize`` and the per-request part shared with the Engine
(``run_request``). ``omni.run`` is an Engine with one request: one code path, not two."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from omni.errors import OmniError, UsageError
from omni.registry import Registry
from omni.runtime import measure
from omni.runtime.engine import Engine, Result
from omni.runtime.observe import EventListener
from omni.runtime.prompt_cache import PromptCache
from omni.runtime.report import RunReport
from omni.runtime.request import KNOWN, Request
from omni.runtime.session import Prepared, Session, prepare

__all__ = ["run", "optimize", "Optimized", "run_request", "check_sequence"]


def check_sequence(name: str, value: Any) -> tuple[str, ...]:
    """A list/tuple of names; a bare string is refused instead of being split into letters."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise UsageError(f"{name} must be a list of names, e.g. {name}=[{value!r}], not the string {value!r}")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{name} must be a list of names (strings), not {type(value).__name__}")
    return tuple(value)


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

    report = _request_report(session)
    restore = _apply_options(session, request.options, report)
    measure.reset_cuda_peak()
    rss_before = measure.rss_bytes()
    try:
        out = generate(session.ctx, report, request.prompt, dict(request.args), seed=request.seed,
                       on_event=on_event, cancel=cancel, embeddings=embeddings)
    except OmniError as exc:
        report.error = str(exc)
        exc.report = report  # type: ignore[attr-defined]
        raise
    finally:
        restore()
    report.timings["queue_wait"] = round(queue_wait, 6)
    report.timings["total"] = round(queue_wait + report.timings["generate"], 6)
    report.memory.update({"rss_before_generate": rss_before, "rss_after_generate": measure.rss_bytes(),
                          "peak_rss_bytes": measure.peak_rss_bytes()})
    cuda = measure.cuda_peaks()
    if cuda is not None:
        report.memory["cuda_peak_generate"] = cuda
    video = session.family.facts.modality == "video"
    return Result(report=report, frames=out if video else None, images=None if video else out, pipe=session.pipe)


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


def run(model: str, prompt: str = "a red circle on a blue background", config: Mapping[str, Any] | None = None, *,
        optimize: Any = (), sets: Mapping[str, Any] | None = None, preset: str | None = None, strict: bool = False,
        seed: int = 0, device: str | None = None, dtype: str | None = None,
        progress: Callable[[int, int], None] | None = None, on_event: EventListener | None = None,
        registry: Registry | None = None, prepared: Prepared | None = None, **generation: Any) -> Result:
    """Resolve, load, optimize and generate once. ``generation`` overrides the model's defaults
    (``num_inference_steps``, ``height``, ``width``, ``num_frames``, ``guidance_scale`` ...)."""
    t_start = time.perf_counter()
    _check_mapping("config", config)
    _check_mapping("sets", sets)
    prep = prepared or prepare(model, config, optimize=check_sequence("optimize", optimize), sets=sets,
                               preset=preset, strict=strict, registry=registry)
    fields = request_fields(generation)
    gen_args = {**prep.generation_defaults(), **{k: v for k, v in generation.items() if v is not None}}
    engine = Engine(None, prepared=prep, device=device, dtype=dtype, prompt_cache=False, generation=gen_args)
    try:
        job = engine.submit(prompt, seed=seed, **fields)

        def listen(_job: Any, event: str, data: dict[str, Any]) -> None:
            if on_event is not None:
                on_event(event, data)
            if progress is not None and event == "step" and data.get("total"):
                progress(data["step"], data["total"])

        job.subscribe(listen)
        result = job.result()
    finally:
        engine.close()
    result.report.timings["total"] = round(time.perf_counter() - t_start, 6)
    return result


def _check_mapping(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise UsageError(f"{name} must be a mapping of config keys to values, not {type(value).__name__}")
    for key in value or {}:
        if not isinstance(key, str):
            raise UsageError(f"{name}: key {key!r} is not a string")


class Optimized:
    """What ``omni.optimize`` returns: the caller's pipeline (``pipe``), the ``report``, ``undo()``.
    Unpacks as ``pipe, report = omni.optimize(...)``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def pipe(self) -> Any:
        return self.session.pipe

    @property
    def report(self) -> RunReport:
        return self.session.report

    def undo(self) -> list[str]:
        """Undo everything applied, in reverse order; returns what could not be undone."""
        return self.session.undo()

    def generate(self, prompt: str = "", **fields: Any) -> Result:
        """One generation with omni's observation (step timings, cache hits) on this pipeline."""
        from omni.runtime.request import validate_request

        return run_request(self.session, validate_request(self.session, prompt=prompt, **request_fields(fields)))

    def __iter__(self) -> Iterator[Any]:
        return iter((self.pipe, self.report))


def optimize(pipe: Any, config: Mapping[str, Any] | None = None, *, strict: bool = False,
             registry: Registry | None = None, optimize: Any = (), sets: Mapping[str, Any] | None = None,
             preset: str | None = None) -> Optimized:
    """Apply a config to an existing diffusers pipeline (the *same* object is changed in place).

    Load-time optimizations cannot apply to a built pipeline and are reported as skipped. When a step
    fails, what was applied is undone in reverse order before the error is raised; the error names
    anything that could not be undone."""
    from omni.plugins import get_registry
    from omni.resolve import ResolvedModel
    from omni.specs import Stage

    _check_mapping("config", config)
    _check_mapping("sets", sets)
    registry = registry or get_registry()
    cls = type(pipe).__name__
    family = registry.family_for_pipeline(cls)
    if family is None:
        raise UsageError(f"no installed family handles pipeline class {cls}")
    resolved = ResolvedModel(ref=cls, family=family.spec.name, kind="object", how=f"pipeline object of class {cls}")
    prep = prepare(resolved, config, strict=strict, registry=registry, optimize=check_sequence("optimize", optimize),
                   sets=sets, preset=preset)
    load_steps = [s for s in prep.plan.steps if s.spec.stage is Stage.LOAD]
    if load_steps and prep.config.strict:
        from omni.errors import StrictRefusal

        raise StrictRefusal(f"--strict: {load_steps[0].name} is a load-time optimization; use omni.run to load with it")
    for s in load_steps:
        res = prep.report.result(s.name)
        if res is not None:
            res.status, res.reason = "skipped", "load-time optimization: the pipeline was already loaded (use omni.run)"
    try:
        session = Session.attach(prep, pipe)
    except OmniError as exc:
        partial = getattr(exc, "session", None)
        applied = list(partial.ctx.applied) if partial is not None else []
        problems = partial.undo() if partial is not None else []
        failed = {p.split(":", 1)[0] for p in problems}
        undone = [n for n in reversed(applied) if n not in failed]
        tail = f"; undone in reverse order: {', '.join(undone)}" if undone else ""
        tail += f"; could not be undone: {'; '.join(problems)}" if problems else ""
        exc.args = (f"{exc}{tail}",)
        raise
    return Optimized(session)
