"""Applying one planned step: the contract and the rollback rule (docs/architecture.md).

The core's ``omni_step`` implementation is the innermost call of the hook (plugins may only wrap it):
it calls the declaration's ``impl`` (or the family's ``load``). :class:`StepRunner` takes a
fingerprint before each post-load step; when the step raises, raises ``Skip`` or returns something
that is not ``Applied``, it runs the undo actions the step registered and compares fingerprints:
unchanged -> the run goes on and the report says so; changed -> ``OptimizationFailed``. Importing this
module is cheap (no torch).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from omni.behaviour import resolve
from omni.errors import ModelLoadError, OptimizationFailed, StrictRefusal, UsageError
from omni.hookspecs import hookimpl
from omni.registry import Registry
from omni.runtime.context import Applied, RunContext, Skip, Step
from omni.runtime.report import OptimizationResult, RunReport
from omni.specs import Stage

DEFAULT_LOAD = "omni.loading:load_diffusers"


@hookimpl(trylast=True)
def omni_step(ctx: RunContext, step: Step) -> Any:
    """The innermost implementation: the declaration's behaviour."""
    if step.family is not None:
        return resolve(step.family.load or DEFAULT_LOAD)(ctx, step)
    assert step.optimization is not None
    return resolve(step.optimization.impl)(ctx, step)


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def run_undo(actions: list[Callable[[], None]]) -> list[str]:
    """Run undo actions in reverse order; returns the errors (never raises)."""
    errors = []
    for action in reversed(actions):
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - every action gets its chance
            errors.append(_message(exc))
    return errors


def combined_undo(step: Step, applied: Applied) -> Callable[[], None] | None:
    actions = list(step.undo_actions) + ([applied.undo] if applied.undo is not None else [])
    if not actions:
        return None

    def undo() -> None:
        errors = run_undo(actions)
        if errors:
            raise RuntimeError("; ".join(errors))

    return undo


class StepRunner:
    """Runs planned steps through ``omni_step`` and writes their outcome into the report."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def call(self, ctx: RunContext, step: Step) -> Any:
        return self.registry.pm.hook.omni_step(ctx=ctx, step=step)

    def _result(self, planned: Any, report: RunReport, **kw: Any) -> OptimizationResult:
        res = report.result(planned.name)
        if res is None:
            res = OptimizationResult(name=planned.name, status="planned")
            report.config_resolved.append(res)
        res.stage = planned.spec.stage.value
        res.cell = planned.cell.status.value
        res.plugin = planned.plugin.to_json()
        res.options = {**planned.spec.defaults, **dict(planned.options)}
        for k, v in kw.items():
            setattr(res, k, v)
        return res

    def apply(self, ctx: RunContext, planned: Any, report: RunReport, strict: bool) -> None:
        from omni.runtime.fingerprint import diff, fingerprint

        options = {**planned.spec.defaults, **dict(planned.options)}
        step = Step(name=planned.name, stage=planned.spec.stage.value, plugin=planned.plugin, options=options,
                    optimization=planned.spec)
        is_load = planned.spec.stage is Stage.LOAD
        saved = (copy.copy(ctx.load_kwargs), copy.copy(ctx.component_overrides)) if is_load else None
        before = None if is_load else fingerprint(ctx.pipe)
        outcome: tuple[str, str]
        try:
            applied = self.call(ctx, step)
            if not isinstance(applied, Applied):
                raise TypeError(f"impl returned {type(applied).__name__}, expected omni.sdk.Applied")
        except UsageError as exc:
            # bad user input detected by the plugin (a corrupt weights file): stop with exit 2
            run_undo(step.undo_actions)
            if saved is not None:
                ctx.load_kwargs, ctx.component_overrides = saved
            self._result(planned, report, status="failed", reason=f"bad input: {exc}")
            raise
        except Skip as exc:
            outcome = ("skipped", str(exc) or "skipped")
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            outcome = ("failed", _message(exc))
        else:
            self._applied(ctx, planned, step, applied, report)
            return
        status, reason = outcome
        undo_errors = run_undo(step.undo_actions)
        if saved is not None:
            ctx.load_kwargs, ctx.component_overrides = saved
            changes: list[str] = []
        else:
            changes = diff(before or {}, fingerprint(ctx.pipe), undone=bool(step.undo_actions))
        undone = " (its undo actions ran; restored values checked on samples)" if step.undo_actions else ""
        if changes or undo_errors:
            what = ", ".join(changes + [f"undo failed: {e}" for e in undo_errors])
            verb = "skipped" if status == "skipped" else "failed"
            self._result(planned, report, status="failed",
                         reason=f"{verb} ({reason}) after modifying the pipeline{undone}: {what}")
            raise OptimizationFailed(
                f"{planned.name} {verb} ({reason}) after modifying the pipeline ({what}); the run was stopped so a "
                "half-applied optimization cannot change the output")
        if status == "skipped":
            self._result(planned, report, status="skipped", reason=reason + undone)
            if strict:
                raise StrictRefusal(f"--strict: {planned.name} could not be applied: {reason}")
            return
        self._result(planned, report, status="failed", reason=f"{reason}; pipeline unchanged{undone}")
        if strict:
            raise OptimizationFailed(f"--strict: {planned.name} failed: {reason}")

    def _applied(self, ctx: RunContext, planned: Any, step: Step, applied: Applied, report: RunReport) -> None:
        applied.undo = combined_undo(step, applied)
        ctx.applied[planned.name] = applied
        ctx.stages[planned.name] = planned.spec.stage.value
        details = dict(applied.details)
        details["reversible"] = applied.undo is not None
        self._result(planned, report, status="applied", details=details,
                     reason=None if planned.cell.status.value == "supported" else "applied; cell is untested")

    def run_stage(self, ctx: RunContext, stage: Stage, plan: Any, report: RunReport, strict: bool) -> None:
        for planned in plan.steps:
            if planned.spec.stage is stage:
                self.apply(ctx, planned, report, strict)

    def load(self, ctx: RunContext) -> Any:
        declared = self.registry.family(ctx.family.name)
        step = Step(name=f"load:{ctx.family.name}", stage="load", plugin=declared.plugin, family=ctx.family)
        pipe = self.call(ctx, step)
        if pipe is None:
            raise ModelLoadError(f"family {ctx.family.name!r} returned no pipeline")
        return pipe
