"""The compatibility matrix: families x optimizations and optimizations x optimizations.

Written by hand (no library does this). Built purely from declarations, so it never imports an
optimization's implementation. Cell resolution, first match wins for the status, but every
applicable reason is kept:

1. the optimization is disabled for this run/process         -> ``disabled``
2. an explicit ``unsupported`` claim on either side          -> ``unsupported``
3. a required trait is missing from the family               -> ``unsupported``
4. the environment lacks a package / accelerator / capability -> ``unavailable``
   (only when an :class:`~omni.environment.Environment` is given; the published docs tables are
   environment-free and show the needs as notes instead)
5. an explicit ``supported`` claim on either side            -> ``supported``
6. otherwise (traits match, nobody claims it)               -> ``untested`` (a proof recorded on
   this machine by ``omni verify --include-untested`` is shown as a reason, never as ``supported``)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omni.environment import Environment
from omni.errors import UsageError
from omni.names import did_you_mean, norm
from omni.registry import Declared, PluginRef, Registry
from omni.specs import FamilySpec, OptimizationSpec, Support

SYMBOLS = {
    Support.SUPPORTED: "✅",
    Support.UNSUPPORTED: "❌",
    Support.UNTESTED: "❓",
    Support.UNAVAILABLE: "⛔",
    Support.DISABLED: "➖",
}


@dataclass(frozen=True)
class Cell:
    family: str
    optimization: str
    status: Support
    reasons: tuple[str, ...]
    declared_by: tuple[PluginRef, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "optimization": self.optimization,
            "status": self.status.value,
            "reasons": list(self.reasons),
            "declared_by": [p.to_json() for p in self.declared_by],
        }


@dataclass(frozen=True)
class PlannedStep:
    spec: OptimizationSpec
    plugin: PluginRef
    cell: Cell
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Skipped:
    name: str
    status: str  # unsupported | unavailable | disabled | conflict
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"optimization": self.name, "status": self.status, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Plan:
    family: str
    steps: tuple[PlannedStep, ...]
    skipped: tuple[Skipped, ...]

    def names(self) -> list[str]:
        return [s.name for s in self.steps]


def conflict_reason(a: OptimizationSpec, b: OptimizationSpec) -> str | None:
    """Why ``a`` and ``b`` cannot run together, or None."""
    if a.exclusive_group and a.exclusive_group == b.exclusive_group:
        return f"{a.name} and {b.name} are both {a.exclusive_group} methods; only one can be active"
    for x, y in ((a, b), (b, a)):
        reason = x.conflicts_with.get(norm(y.name))
        if reason:
            return reason
    return None


class CompatMatrix:
    """Typed matrix over a registry. ``env=None`` gives the environment-free (published) view."""

    def __init__(self, registry: Registry, env: Environment | None = None, disabled: Iterable[str] = ()) -> None:
        self.registry = registry
        self.env = env
        self.disabled = {norm(d) for d in disabled}
        from omni.verify_store import local_proofs

        self.local_proofs = local_proofs()
        unknown = self.disabled - set(registry.optimizations)
        if unknown:
            name = sorted(unknown)[0]
            raise UsageError(f"cannot disable unknown optimization {name!r}{did_you_mean(name, self.optimization_names)}")

    @property
    def family_names(self) -> list[str]:
        """Families with declared facts (a catch-all family's facts exist per model: see ``omni capabilities``)."""
        return [d.spec.name for d in self.registry.families.values() if not d.spec.catch_all]

    @property
    def optimization_names(self) -> list[str]:
        return [d.spec.name for d in self.ordered_optimizations()]

    def ordered_optimizations(self) -> list[Declared[OptimizationSpec]]:
        return sorted(self.registry.optimizations.values(), key=lambda d: (d.spec.stage.rank, d.spec.order, d.spec.name))

    def _family(self, name: str) -> Declared[FamilySpec]:
        return self.registry.family(name)

    def _optimization(self, name: str) -> Declared[OptimizationSpec]:
        return self.registry.optimization(name)

    def cell(self, family: str, optimization: str, task: str | None = None) -> Cell:
        """One cell; with ``task``, a claim made for that task (``"teacache@i2v"``) overrides the general one."""
        fam = self._family(family)
        opt = self._optimization(optimization)
        f, o = fam.spec, opt.spec
        fam_claim = (f.claims.get(f"{norm(o.name)}@{task}") if task else None) or f.claims.get(norm(o.name))
        opt_claim = (o.claims.get(f"{norm(f.name)}@{task}") if task else None) or o.claims.get(norm(f.name))
        by: list[PluginRef] = []
        reasons: list[str] = []
        status: Support | None = None
        if norm(o.name) in self.disabled:
            status = Support.DISABLED
            reasons.append("disabled for this run")
        for claim, src in ((fam_claim, fam.plugin), (opt_claim, opt.plugin)):
            if claim is not None and claim.status is Support.UNSUPPORTED:
                status = status or Support.UNSUPPORTED
                reasons.append(claim.reason)
                by.append(src)
        missing = sorted(o.requires_traits - self.registry.traits(f.name))
        if missing:
            status = status or Support.UNSUPPORTED
            reasons.append(f"{f.name} lacks trait(s) {', '.join(missing)} required by {o.name}")
            # a remedy is shown only when it can work: every missing trait has one (a structural miss
            # such as denoiser:dit has none, and then no remedy is suggested)
            if all(t in o.trait_hints for t in missing):
                reasons.extend(o.trait_hints[t] for t in missing)
            by.append(opt.plugin)
        if self.env is not None:
            unmet = self.env.unmet(o.needs)
            if unmet:
                status = status or Support.UNAVAILABLE
                reasons.extend(unmet)
                if opt.plugin not in by:
                    by.append(opt.plugin)
        supported_by = [
            (c, s) for c, s in ((fam_claim, fam.plugin), (opt_claim, opt.plugin)) if c and c.status is Support.SUPPORTED
        ]
        if status is None and supported_by:
            status = Support.SUPPORTED
            for claim, src in supported_by:
                reasons.append(claim.reason or f"claimed by {src.name}")
                by.append(src)
        if status is None:
            status = Support.UNTESTED
            reasons.append(f"traits match but no plugin claims {o.name} on {f.name}")
            proof = self.local_proofs.get((f.name, o.name))
            if proof:
                reasons.append(f"verified locally on {proof.get('date', '?')} with {proof.get('model', '?')} "
                               f"(omni verify --include-untested; a local proof, not a claim)")
        if self.env is None and o.needs != type(o.needs)():
            reasons.append(f"needs {o.needs.describe()}")
        return Cell(f.name, o.name, status, tuple(r for r in reasons if r), tuple(dict.fromkeys(by)))

    def row(self, family: str) -> list[Cell]:
        return [self.cell(family, o) for o in self.optimization_names]

    def conflicts(self) -> list[tuple[str, str, str]]:
        opts = self.ordered_optimizations()
        out = []
        for i, a in enumerate(opts):
            for b in opts[i + 1 :]:
                reason = conflict_reason(a.spec, b.spec)
                if reason:
                    out.append((a.spec.name, b.spec.name, reason))
        return out

    def plan(self, family: str, requested: Sequence[str] | Mapping[str, Mapping[str, Any]],
             task: str | None = None) -> Plan:
        """Keep what can run (supported or untested), skip the rest with reasons, resolve conflicts
        (first requested wins), then order by stage and ``order``. ``task``: the task of the model's own
        pipeline (an image-to-video checkpoint), whose task-specific claims decide its cells."""
        fam = self._family(family)
        options_by_name = dict(requested) if isinstance(requested, Mapping) else {r: {} for r in requested}
        kept: list[PlannedStep] = []
        skipped: list[Skipped] = []
        for name, options in options_by_name.items():
            opt = self._optimization(name)
            cell = self.cell(fam.spec.name, opt.spec.name, task)
            if cell.status not in (Support.SUPPORTED, Support.UNTESTED):
                skipped.append(Skipped(opt.spec.name, cell.status.value, cell.reasons))
                continue
            if any(norm(k.name) == norm(opt.spec.name) for k in kept):
                continue
            clash = next(((k, conflict_reason(k.spec, opt.spec)) for k in kept if conflict_reason(k.spec, opt.spec)), None)
            if clash:
                skipped.append(Skipped(opt.spec.name, "conflict", (f"conflicts with {clash[0].name}: {clash[1]}",)))
                continue
            kept.append(PlannedStep(opt.spec, opt.plugin, cell, dict(options or {})))
        kept.sort(key=lambda s: (s.spec.stage.rank, s.spec.order, s.spec.name))
        return Plan(fam.spec.name, tuple(kept), tuple(skipped))

    # ------------------------------------------------------------------ rendering
    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.env.to_json() if self.env else None,
            "families": self.family_names,
            "optimizations": self.optimization_names,
            "cells": [self.cell(f, o).to_json() for f in self.family_names for o in self.optimization_names],
            "conflicts": [{"a": a, "b": b, "reason": r} for a, b, r in self.conflicts()],
        }
