"""A Session: a pipeline loaded and optimized once (the six stages), with its plan and load report.

``prepare`` resolves the model and the config and builds the plan before anything heavy happens;
``Session.load`` runs all six stages on a freshly loaded pipeline; ``Session.attach`` runs the
post-load stages on a caller's pipeline (``omni.optimize``); ``Session.undo`` reverses what was
applied, in reverse order."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omni.config import RunConfig, device_note, resolve_config
from omni.environment import Environment
from omni.errors import ModelLoadError, OmniError, StrictRefusal, UsageError
from omni.matrix import CompatMatrix, Plan
from omni.registry import Registry
from omni.resolve import ResolvedModel, inferred_registry, resolve_model
from omni.runtime import measure
from omni.runtime.context import RunContext
from omni.runtime.report import OptimizationResult, RunReport, environment_info
from omni.runtime.steps import StepRunner
from omni.specs import FamilySpec, Limits, Stage

POST_LOAD_STAGES = (Stage.QUANTIZE, Stage.PLACE, Stage.CACHE, Stage.COMPILE, Stage.DECODE)


@dataclass
class Prepared:
    registry: Registry
    resolved: ResolvedModel
    config: RunConfig
    plan: Plan
    env: Environment
    report: RunReport

    @property
    def family(self) -> FamilySpec:
        return self.registry.family(self.resolved.family).spec

    @property
    def limits(self) -> Limits:
        model = self.resolved.model
        return model.limits if model is not None and model.limits is not None else self.family.limits

    def generation_defaults(self) -> dict[str, Any]:
        model = self.resolved.model
        return dict(model.default_generation) if model is not None else dict(self.family.default_generation)


def prepare(model: str | ResolvedModel, config: Mapping[str, Any] | RunConfig | None = None, *,
            optimize: list[str] | tuple[str, ...] = (), sets: Mapping[str, Any] | None = None,
            preset: str | None = None, strict: bool = False, registry: Registry | None = None) -> Prepared:
    """Resolve the model and config and build the plan; raises before anything heavy is loaded."""
    from omni.plugins import get_registry

    registry = registry or get_registry()
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model, registry)
    env = Environment.detect()
    if resolved.kind == "family":
        raise UsageError(
            f"{resolved.ref!r} names a family, not a model: pass a local folder, a hub id already in the HF cache, "
            f"or a named model such as tiny-{resolved.family}")
    if isinstance(config, RunConfig):
        cfg = config
    else:
        cfg = resolve_config(registry, config, optimize=optimize, sets=sets, preset=preset, strict=strict,
                             family=resolved.family, env=env)
    registry, inferred = inferred_registry(resolved, registry)
    task = own_task(registry.family(resolved.family).spec, resolved)
    plan = CompatMatrix(registry, env=env, disabled=list(cfg.disabled)).plan(resolved.family, cfg.requested, task)
    report = RunReport(model=resolved.ref, family=resolved.family, config_requested=cfg.to_json(),
                       notes=list(cfg.notes) + inferred)
    _record_plan(report, plan, cfg, registry)
    catch_all = registry.family(resolved.family).spec.catch_all
    if not catch_all:  # a catch-all family's traits are complete only once loaded: checked then
        _refuse_if_strict(cfg, plan, resolved.family)
    return Prepared(registry, resolved, cfg, plan, env, report)


def _record_plan(report: RunReport, plan: Plan, cfg: RunConfig, registry: Registry,
                 stages: tuple[Stage, ...] | None = None) -> None:
    """Write the plan's skipped and planned steps into the report (only those of ``stages`` when given)."""
    def wanted(name: str) -> bool:
        return stages is None or registry.optimization(name).spec.stage in stages

    report.config_resolved = [r for r in report.config_resolved if not wanted(r.name)]
    for skipped in plan.skipped:
        if wanted(skipped.name):
            report.config_resolved.append(OptimizationResult(
                name=skipped.name, status="skipped", reason="; ".join(skipped.reasons), cell=skipped.status,
                options=dict(cfg.requested.get(skipped.name, {})), requested_by=cfg.requested_by.get(skipped.name),
                plugin=registry.optimization(skipped.name).plugin.to_json()))
    for planned in plan.steps:
        if wanted(planned.name):
            report.config_resolved.append(OptimizationResult(
                name=planned.name, status="planned", stage=planned.spec.stage.value,
                requested_by=cfg.requested_by.get(planned.name)))


def _refuse_if_strict(cfg: RunConfig, plan: Plan, family: str) -> None:
    if cfg.strict and plan.skipped:
        first = plan.skipped[0]
        raise StrictRefusal(
            f"--strict: {first.name} cannot be applied to {family} ({first.status}: {'; '.join(first.reasons)})"
            + (f" and {len(plan.skipped) - 1} more" if len(plan.skipped) > 1 else ""))


def own_task(family: FamilySpec, resolved: ResolvedModel) -> str | None:
    """The task of the model's own pipeline when it is a sibling (``ModelSpec.task``, or a local folder whose
    pipeline class the family maps to a task other than its first pipeline's); None for the family's base."""
    if resolved.model is not None and resolved.model.task:
        return resolved.model.task
    cls = resolved.pipeline_class
    if cls and family.pipelines and cls != family.pipelines[0]:
        return next((t for t, c in family.task_pipelines.items() if c == cls), None)
    return None


@contextlib.contextmanager
def stage_timer(report: RunReport, name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        report.timings.setdefault("stages", {})[name] = round(time.perf_counter() - t0, 6)
        report.memory.setdefault("rss_after_stage", {})[name] = measure.rss_bytes()
        cuda = measure.cuda_peaks()
        if cuda is not None:
            report.memory.setdefault("cuda_peak_per_stage", {})[name] = cuda


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Session:
    """A warm pipeline: ``pipe``, ``ctx`` (what was applied), ``prepared`` (plan, config) and
    ``report`` (the load report)."""

    def __init__(self, prepared: Prepared, ctx: RunContext) -> None:
        self.prepared = prepared
        self.ctx = ctx
        ctx.planned = {s.name: s.spec.stage.value for s in prepared.plan.steps}
        self.runner = StepRunner(prepared.registry)

    @property
    def pipe(self) -> Any:
        return self.ctx.pipe

    @property
    def report(self) -> RunReport:
        return self.prepared.report

    @property
    def family(self) -> FamilySpec:
        return self.ctx.family

    @classmethod
    def load(cls, prepared: Prepared, *, device: str | None = None, dtype: str | None = None,
             generation: Mapping[str, Any] | None = None) -> Session:
        """Load the model and apply the plan (all six stages); no generation. ``generation``: the
        arguments the pipeline will be called with, visible to steps as ``ctx.generation``."""
        device = device or default_device()
        dtype = dtype or ("bfloat16" if device == "cuda" else "float32")
        gen = dict(generation if generation is not None else prepared.generation_defaults())
        ctx = RunContext(model=prepared.resolved, family=prepared.family, env=prepared.env, device=device,
                         dtype=dtype, generation=gen, allow_pickle=prepared.config.allow_pickle)
        prepared.report.environment = environment_info(device)
        elsewhere = device_note(prepared.config.metadata, prepared.report.environment)
        if elsewhere:
            prepared.report.notes.append(elsewhere)
        session = cls(prepared, ctx)
        with stage_timer(prepared.report, "load"):
            session.runner.run_stage(ctx, Stage.LOAD, prepared.plan, prepared.report, prepared.config.strict)
            try:
                ctx.pipe = session.runner.load(ctx)
            except (ModelLoadError, UsageError):
                raise
            except Exception as exc:  # noqa: BLE001
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelLoadError(f"loading {prepared.resolved.ref!r} failed: {type(exc).__name__}: {first}") from exc
        if prepared.family.catch_all:
            session._replan_from_modules()
        session._apply(POST_LOAD_STAGES)
        return session

    def _replan_from_modules(self) -> None:
        """A catch-all family: infer the traits the loaded modules show, plan the post-load steps again, and
        apply ``--strict`` now that the traits are complete."""
        prep = self.prepared
        registry, notes = inferred_registry(prep.resolved, prep.registry, self.ctx.pipe)
        fresh = CompatMatrix(registry, env=prep.env, disabled=list(prep.config.disabled)).plan(
            prep.resolved.family, {n: o for n, o in prep.config.requested.items()
                                   if registry.optimization(n).spec.stage is not Stage.LOAD},
            own_task(prep.family, prep.resolved))
        loads = tuple(s for s in prep.plan.steps if s.spec.stage is Stage.LOAD)
        load_skips = tuple(s for s in prep.plan.skipped if registry.optimization(s.name).spec.stage is Stage.LOAD)
        prep.registry = registry
        prep.plan = Plan(fresh.family, loads + fresh.steps, load_skips + fresh.skipped)
        self.ctx.family = prep.family
        self.runner = StepRunner(registry)
        _record_plan(prep.report, fresh, prep.config, registry, POST_LOAD_STAGES)
        prep.report.notes.extend(n for n in notes if n not in prep.report.notes)
        _refuse_if_strict(prep.config, prep.plan, prep.resolved.family)

    @classmethod
    def attach(cls, prepared: Prepared, pipe: Any) -> Session:
        """Apply the post-load stages to an already built pipeline (``omni.optimize``)."""
        first = next((p for _, m in measure.modules(pipe) for p in m.parameters() if p.dtype.is_floating_point), None)
        device = str(first.device).split(":")[0] if first is not None else "cpu"
        dtype = str(first.dtype).replace("torch.", "") if first is not None else "float32"
        ctx = RunContext(model=prepared.resolved, family=prepared.family, env=prepared.env, pipe=pipe,
                         device=device, dtype=dtype)
        prepared.report.environment = environment_info(ctx.device)
        session = cls(prepared, ctx)
        try:
            session._apply(POST_LOAD_STAGES)
        except OmniError as exc:
            exc.session = session  # type: ignore[attr-defined]  # omni.optimize undoes what was applied
            raise
        return session

    def _apply(self, stages: tuple[Stage, ...]) -> None:
        prep, ctx = self.prepared, self.ctx
        before = measure.param_bytes(ctx.pipe)
        for stage in stages:
            if stage is Stage.PLACE and ctx.device != "cpu":
                places = any(s.spec.places_pipeline and s.spec.stage is Stage.PLACE for s in prep.plan.steps)
                if not places:
                    ctx.pipe.to(ctx.device)
            with stage_timer(prep.report, stage.value):
                self.runner.run_stage(ctx, stage, prep.plan, prep.report, prep.config.strict)
        formats = {}
        for res in prep.report.config_resolved:
            for comp, fmt in res.details.get("formats", {}).items() if res.status == "applied" else ():
                formats[comp] = fmt
        prep.report.device_placement = measure.placement(ctx.pipe, formats)
        after = measure.param_bytes(ctx.pipe)
        prep.report.memory["param_bytes"] = {
            name: {"before": before.get(name), "after": after.get(name)} for name in after}
        prep.report.notes.extend(n for n in ctx.notes if n not in prep.report.notes)

    def undo(self) -> list[str]:
        """Undo every applied step in reverse order; returns one line per step that could not be
        undone (no undo, or its undo failed). The pipeline is left as far restored as possible."""
        problems = []
        for name in reversed(list(self.ctx.applied)):
            applied = self.ctx.applied.pop(name)
            if applied.undo is None:
                problems.append(f"{name}: has no undo")
                continue
            try:
                applied.undo()
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest
                problems.append(f"{name}: undo failed: {type(exc).__name__}: {exc}")
        return problems
