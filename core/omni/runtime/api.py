"""Python API: ``omni.optimize(pipe, config)`` and ``omni.run(model, prompt=..., config=...)``.

Order of a run (justified in docs/architecture.md):
load (+ load-time GGUF/torchao) -> quantize (fuse_qkv, torchao, layerwise casting) -> place (device
or offload) -> cache -> compile -> decode (VAE options) -> generate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omni.config import RunConfig, resolve_config
from omni.environment import Environment
from omni.errors import ModelLoadError, StrictRefusal, UsageError
from omni.matrix import CompatMatrix, Plan
from omni.plugins import Registry, get_registry
from omni.resolve import ResolvedModel, resolve_model
from omni.runtime import measure
from omni.runtime.context import RunContext
from omni.runtime.executor import Executor
from omni.runtime.report import OptimizationResult, RunReport, environment_info
from omni.specs import Stage

POST_LOAD_STAGES = (Stage.QUANTIZE, Stage.PLACE, Stage.CACHE, Stage.COMPILE, Stage.DECODE)


@dataclass
class Result:
    """Output of :func:`run`: ``images`` (N, H, W, C) or ``frames`` (N, F, H, W, C), floats in [0, 1]."""

    report: RunReport
    images: Any = None
    frames: Any = None
    pipe: Any = None

    @property
    def output(self) -> Any:
        return self.frames if self.frames is not None else self.images


@dataclass
class Prepared:
    registry: Registry
    resolved: ResolvedModel
    config: RunConfig
    plan: Plan
    env: Environment
    report: RunReport


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare(
    model: str | ResolvedModel,
    config: Mapping[str, Any] | RunConfig | None = None,
    *,
    optimize: list[str] | tuple[str, ...] = (),
    sets: Mapping[str, Any] | None = None,
    preset: str | None = None,
    strict: bool = False,
    registry: Registry | None = None,
) -> Prepared:
    """Resolve the model and config and build the plan; raises before anything heavy is loaded."""
    registry = registry or get_registry()
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model, registry)
    env = Environment.detect()
    if resolved.kind == "family":
        raise UsageError(
            f"{resolved.ref!r} names a family, not a model: pass a local folder, a hub id already in the HF cache, "
            f"or a named model such as tiny-{resolved.family}"
        )
    if isinstance(config, RunConfig):
        cfg = config
    else:
        cfg = resolve_config(registry, config, optimize=optimize, sets=sets, preset=preset, strict=strict,
                             family=resolved.family, env=env)
    matrix = CompatMatrix(registry, env=env, disabled=list(cfg.disabled))
    plan = matrix.plan(resolved.family, cfg.requested)
    report = RunReport(model=resolved.ref, family=resolved.family, config_requested=cfg.to_json(),
                       notes=list(cfg.notes))
    for skipped in plan.skipped:
        report.config_resolved.append(OptimizationResult(
            name=skipped.name, status="skipped", reason="; ".join(skipped.reasons), cell=skipped.status,
            options=dict(cfg.requested.get(skipped.name, {})), requested_by=cfg.requested_by.get(skipped.name),
            plugin=registry.optimization(skipped.name).plugin.to_json()))
    for planned in plan.steps:
        report.config_resolved.append(OptimizationResult(
            name=planned.name, status="planned", stage=planned.spec.stage.value,
            requested_by=cfg.requested_by.get(planned.name)))
    if cfg.strict and plan.skipped:
        first = plan.skipped[0]
        raise StrictRefusal(
            f"--strict: {first.name} cannot be applied to {resolved.family} ({first.status}: {'; '.join(first.reasons)})"
            + (f" and {len(plan.skipped) - 1} more" if len(plan.skipped) > 1 else "")
        )
    return Prepared(registry, resolved, cfg, plan, env, report)


def _stage_timer(report: RunReport, name: str):
    @contextlib.contextmanager
    def timer():
        t0 = time.perf_counter()
        try:
            yield
        finally:
            report.timings.setdefault("stages", {})[name] = round(time.perf_counter() - t0, 6)
            report.memory.setdefault("rss_after_stage", {})[name] = measure.rss_bytes()
            cuda = measure.cuda_peaks()
            if cuda is not None:
                report.memory.setdefault("cuda_peak_per_stage", {})[name] = cuda
    return timer()


def _apply(prep: Prepared, ctx: RunContext, executor: Executor, stages) -> None:
    for stage in stages:
        if stage is Stage.PLACE and ctx.device != "cpu":
            places = any(s.spec.places_pipeline and s.spec.stage is Stage.PLACE for s in prep.plan.steps)
            if not places:
                ctx.pipe.to(ctx.device)
        with _stage_timer(prep.report, stage.value):
            executor.run_stage(ctx, stage, prep.plan, prep.report, prep.config.strict)


def _finish_report(prep: Prepared, ctx: RunContext, before_bytes: dict[str, int]) -> None:
    formats = {}
    for res in prep.report.config_resolved:
        for comp, fmt in res.details.get("formats", {}).items() if res.status == "applied" else ():
            formats[comp] = fmt
    prep.report.device_placement = measure.placement(ctx.pipe, formats)
    after = measure.param_bytes(ctx.pipe)
    prep.report.memory["param_bytes"] = {
        name: {"before": before_bytes.get(name), "after": after.get(name)} for name in after
    }
    prep.report.notes.extend(n for n in ctx.notes if n not in prep.report.notes)


def optimize(pipe: Any, config: Mapping[str, Any] | None = None, *, strict: bool = False,
             registry: Registry | None = None, **kwargs: Any) -> tuple[Any, RunReport]:
    """Apply a config to an existing diffusers pipeline; returns the *same* pipeline object and a report.

    Load-time optimizations (GGUF, load-time torchao) cannot apply to a built pipeline and are
    reported as skipped. ``kwargs`` accepts ``optimize=[...]``, ``sets={...}``, ``preset=...``.
    """
    registry = registry or get_registry()
    cls = type(pipe).__name__
    family = next((d.spec for d in registry.families.values() if cls in d.spec.pipelines), None)
    if family is None:
        raise UsageError(f"no installed family handles pipeline class {cls}")
    resolved = ResolvedModel(ref=cls, family=family.name, kind="object", how=f"pipeline object of class {cls}")
    prep = prepare(resolved, config, strict=strict, registry=registry, **kwargs)
    load_steps = [s for s in prep.plan.steps if s.spec.stage is Stage.LOAD]
    if load_steps:
        if prep.config.strict:
            raise StrictRefusal(f"--strict: {load_steps[0].name} is a load-time optimization; use omni.run to load with it")
        for s in load_steps:
            res = prep.report.result(s.name)
            res.status, res.reason = "skipped", "load-time optimization: the pipeline was already loaded (use omni.run)"
    device = next((str(p.device) for _, m in measure.modules(pipe) for p in m.parameters()), "cpu")
    ctx = RunContext(model=resolved, family=family, env=prep.env, pipe=pipe, device=device.split(":")[0])
    prep.report.environment = environment_info(ctx.device)
    before = measure.param_bytes(pipe)
    _apply(prep, ctx, Executor(prep.registry), POST_LOAD_STAGES)
    _finish_report(prep, ctx, before)
    pipe._omni_context = ctx  # keeps cache-stat readers reachable for omni.runtime.generate
    return pipe, prep.report


def load_and_optimize(prep: Prepared, *, device: str | None = None, dtype: str | None = None,
                      generation: Mapping[str, Any] | None = None) -> RunContext:
    """Load the model of a prepared request and apply its plan (all six stages); no generation.

    ``generation``: the arguments the pipeline will be called with, visible to the stage hooks as
    ``ctx.generation`` (a step cache sizes its schedule from ``num_inference_steps``)."""
    registry = prep.registry
    family = registry.family(prep.resolved.family).spec
    device = device or default_device()
    dtype = dtype or ("bfloat16" if device == "cuda" else "float32")
    ctx = RunContext(model=prep.resolved, family=family, env=prep.env, device=device, dtype=dtype,
                     generation=dict(generation if generation is not None else generation_defaults(prep)))
    prep.report.environment = environment_info(device)
    executor = Executor(registry)
    with _stage_timer(prep.report, "load"):
        executor.run_stage(ctx, Stage.LOAD, prep.plan, prep.report, prep.config.strict)
        try:
            ctx.pipe = executor.load(ctx)
        except (ModelLoadError, UsageError):
            raise
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"loading {prep.resolved.ref!r} failed: {type(exc).__name__}: {first}") from exc
    before = measure.param_bytes(ctx.pipe)
    _apply(prep, ctx, executor, POST_LOAD_STAGES)
    _finish_report(prep, ctx, before)
    return ctx


def generation_defaults(prep: Prepared) -> dict[str, Any]:
    family = prep.registry.family(prep.resolved.family).spec
    return dict(prep.resolved.model.default_generation) if prep.resolved.model else dict(family.default_generation)


def generation_args(prep: Prepared, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's default generation arguments with the non-None ``overrides`` on top."""
    return {**generation_defaults(prep), **{k: v for k, v in (overrides or {}).items() if v is not None}}


def run(
    model: str,
    prompt: str = "a red circle on a blue background",
    config: Mapping[str, Any] | RunConfig | None = None,
    *,
    optimize: list[str] | tuple[str, ...] = (),
    sets: Mapping[str, Any] | None = None,
    preset: str | None = None,
    strict: bool = False,
    seed: int = 0,
    device: str | None = None,
    dtype: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    registry: Registry | None = None,
    prepared: Prepared | None = None,
    **generation: Any,
) -> Result:
    """Resolve, load, optimize and generate. ``generation`` overrides the model's defaults
    (``num_inference_steps``, ``height``, ``width``, ``num_frames``, ``guidance_scale`` ...)."""
    from omni.runtime.generate import generate

    t_start = time.perf_counter()
    prep = prepared or prepare(model, config, optimize=optimize, sets=sets, preset=preset, strict=strict,
                               registry=registry)
    gen_args = generation_args(prep, generation)
    ctx = load_and_optimize(prep, device=device, dtype=dtype, generation=gen_args)
    family = ctx.family
    out = generate(ctx, prep.report, prompt, gen_args, seed=seed, progress=progress)
    prep.report.timings["total"] = round(time.perf_counter() - t_start, 6)
    prep.report.memory["peak_rss_bytes"] = measure.peak_rss_bytes()
    video = family.facts.modality == "video"
    return Result(report=prep.report, frames=out if video else None, images=None if video else out, pipe=ctx.pipe)
