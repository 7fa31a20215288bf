"""Python API: ``omni.run``, ``omni.optimize`` and the per-request part shared with the Engine
(``run_request``). ``omni.run`` is an Engine with one request: one code path, not two."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from omni.config import mapping_arg, names_arg
from omni.errors import OmniError, UsageError
from omni.registry import Registry
from omni.runtime.engine import Engine
from omni.runtime.execute import Result, request_fields, run_request
from omni.runtime.observe import EventListener
from omni.runtime.report import RunReport
from omni.runtime.session import Prepared, Session, prepare

__all__ = ["run", "optimize", "Optimized", "Result"]


def run(model: str, prompt: str | None = None, config: Mapping[str, Any] | None = None, *,
        optimize: Any = (), sets: Mapping[str, Any] | None = None, preset: str | None = None, strict: bool = False,
        seed: int = 0, device: str | None = None, dtype: str | None = None,
        progress: Callable[[int, int], None] | None = None, on_event: EventListener | None = None,
        registry: Registry | None = None, prepared: Prepared | None = None, **generation: Any) -> Result:
    """Resolve, load, optimize and generate once. ``generation`` overrides the model's defaults
    (``num_inference_steps``, ``height``, ``width``, ``num_frames``, ``guidance_scale`` ...) and carries the
    inputs (``image``, ``mask``, ``video``, ``strength``, ``task``). Without ``prompt``, a demo prompt is used
    where the pipeline takes one ("a red circle on a blue background")."""
    t_start = time.perf_counter()
    mapping_arg("config", config)
    mapping_arg("sets", sets)
    prep = prepared or prepare(model, config, optimize=names_arg("optimize", optimize), sets=sets,
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
    from omni.resolve import ResolvedModel, inferred_registry
    from omni.specs import Stage

    mapping_arg("config", config)
    mapping_arg("sets", sets)
    registry = registry or get_registry()
    cls = type(pipe).__name__
    family = registry.family_for_pipeline(cls) or registry.catch_all()
    if family is None:
        raise UsageError(f"no installed family handles pipeline class {cls}")
    resolved = ResolvedModel(ref=cls, family=family.spec.name, kind="object", how=f"pipeline object of class {cls}")
    inferred: list[str] = []
    if family.spec.catch_all:  # a catch-all family: facts from the pipeline's config and modules
        registry, inferred = inferred_registry(resolved, registry, pipe,
                                               index={"_class_name": cls, **dict(pipe.config)})
    prep = prepare(resolved, config, strict=strict, registry=registry, optimize=names_arg("optimize", optimize),
                   sets=sets, preset=preset)
    prep.report.notes.extend(inferred)
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
