"""Executes a plan through the stage hooks, measuring each stage, with the rollback rule:

an optimization that raises is reported ``failed`` (a :class:`UsageError` — bad user input such
as a corrupt weights file — stops the run with exit 2 instead); if the pipeline fingerprint shows it changed
nothing, the run continues (best-effort) — otherwise the run stops with OptimizationFailed, so a
half-modified pipeline never silently produces different output. Load-stage steps only edit
``ctx.load_kwargs`` / ``ctx.component_overrides``; those are restored on failure.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from omni.errors import OptimizationFailed, StrictRefusal, UsageError
from omni.matrix import Plan, PlannedStep
from omni.plugins import Registry
from omni.runtime import measure
from omni.runtime.context import Applied, RunContext, Skip, Step
from omni.runtime.report import OptimizationResult, RunReport
from omni.specs import Stage


class Executor:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._callers: dict[tuple[str, str], Any] = {}

    def _caller(self, hook: str, plugin: str):
        key = (hook, plugin)
        if key not in self._callers:
            pm = self.registry.pm
            keep = {plugin, "omni.dispatch"}
            others = [p for p in pm.get_plugins() if pm.get_name(p) not in keep]
            self._callers[key] = pm.subset_hook_caller(hook, remove_plugins=others)
        return self._callers[key]

    def call(self, ctx: RunContext, step: Step) -> Any:
        """Call the stage hook of ``step`` on its declaring plugin, then omni's dispatcher."""
        return self._caller(f"omni_{step.stage}", step.plugin.name)(ctx=ctx, step=step)

    # ------------------------------------------------------------------ optimizations
    def _result(self, planned: PlannedStep, report: RunReport, **kw: Any) -> OptimizationResult:
        res = report.result(planned.name)
        if res is None:
            res = OptimizationResult(name=planned.name)
            report.config_resolved.append(res)
        res.stage = planned.spec.stage.value
        res.cell = planned.cell.status.value
        res.plugin = planned.plugin.to_json()
        res.options = {**planned.spec.defaults, **dict(planned.options)}
        for k, v in kw.items():
            setattr(res, k, v)
        return res

    def apply_step(self, ctx: RunContext, planned: PlannedStep, report: RunReport, strict: bool) -> None:
        options = {**planned.spec.defaults, **dict(planned.options)}
        step = Step(name=planned.name, stage=planned.spec.stage.value, plugin=planned.plugin, options=options,
                    optimization=planned.spec)
        is_load = planned.spec.stage is Stage.LOAD
        saved = (copy.copy(ctx.load_kwargs), copy.copy(ctx.component_overrides)) if is_load else None
        before = None if is_load else measure.fingerprint(ctx.pipe)
        try:
            applied = self.call(ctx, step)
            if not isinstance(applied, Applied):
                raise TypeError(f"stage hook returned {type(applied).__name__}, expected omni.Applied")
        except UsageError:
            # bad user input detected by the plugin (e.g. a corrupt weights file): stop with exit 2
            if is_load:
                ctx.load_kwargs, ctx.component_overrides = saved  # type: ignore[misc]
            raise
        except Skip as exc:
            self._result(planned, report, status="skipped", reason=str(exc))
            if strict:
                raise StrictRefusal(f"--strict: {planned.name} could not be applied: {exc}") from None
            return
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            if is_load:
                ctx.load_kwargs, ctx.component_overrides = saved  # type: ignore[misc]
                unchanged = True
            else:
                unchanged = measure.fingerprint(ctx.pipe) == before
            self._result(planned, report, status="failed",
                         reason=message + ("; pipeline unchanged" if unchanged else "; pipeline was modified"))
            if not unchanged:
                raise OptimizationFailed(
                    f"{planned.name} failed ({message}) after modifying the pipeline; the run was stopped so a "
                    f"half-applied optimization cannot change the output"
                ) from exc
            if strict:
                raise OptimizationFailed(f"--strict: {planned.name} failed: {message}") from exc
            return
        ctx.applied[planned.name] = applied
        details = dict(applied.details)
        if not planned.spec.reversible:
            details.setdefault("reversible", False)
        self._result(planned, report, status="applied", details=details,
                     reason=None if planned.cell.status.value == "supported" else "applied; cell is untested")

    def run_stage(self, ctx: RunContext, stage: Stage, plan: Plan, report: RunReport, strict: bool) -> None:
        for planned in plan.steps:
            if planned.spec.stage is stage:
                self.apply_step(ctx, planned, report, strict)

    def load(self, ctx: RunContext) -> Any:
        declared = self.registry.family(ctx.family.name)
        step = Step(name=f"load:{ctx.family.name}", stage="load", plugin=declared.plugin, family=ctx.family)
        pipe = self.call(ctx, step)
        if pipe is None:
            from omni.errors import ModelLoadError

            raise ModelLoadError(f"family {ctx.family.name!r} returned no pipeline")
        return pipe


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
