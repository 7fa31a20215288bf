"""Objects passed to and returned by a step's ``impl``. Plain Python; torch is never imported here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omni.registry import PluginRef
from omni.specs import FamilySpec, OptimizationSpec


class Skip(Exception):
    """Raise from an ``impl`` when the optimization cannot apply to *this* pipeline/host.

    The run reports it as ``skipped`` with the message as reason (strict mode turns it into a
    failure). Raise it before changing anything: a ``Skip`` after a change is a failure after a
    change (the core checks).
    """


@dataclass
class Applied:
    """What an ``impl`` did.

    * ``details``: facts for the report (``{"scheme": "int8_weight_only"}``; ``formats``:
      component -> storage format shown in ``device_placement``).
    * ``undo``: restores the pipeline (``step.on_undo`` registers actions as you go; both run).
    * ``stats``: per-denoiser-call ``"computed"``/``"reused"`` flags since the previous read (caches).
    * ``reset``: drops per-generation state (called after an aborted generation).
    * ``reconfigure``: applies new values of the ``per_request`` options without a reload; called
      with the full option mapping.
    """

    details: dict[str, Any] = field(default_factory=dict)
    undo: Callable[[], None] | None = None
    stats: Callable[[], list[str]] | None = None
    reset: Callable[[], None] | None = None
    reconfigure: Callable[[dict[str, Any]], None] | None = None


@dataclass
class Step:
    """One planned step: an optimization (or the family load when ``family`` is set)."""

    name: str
    stage: str
    plugin: PluginRef
    options: dict[str, Any] = field(default_factory=dict)
    optimization: OptimizationSpec | None = None
    family: FamilySpec | None = None
    undo_actions: list[Callable[[], None]] = field(default_factory=list)

    def on_undo(self, action: Callable[[], None]) -> None:
        """Register an action that reverses a change you just made (run in reverse order on undo,
        and by the core when this step fails half-way)."""
        self.undo_actions.append(action)


@dataclass
class RunContext:
    """Mutable state of one load + optimize, shared by the steps."""

    model: Any  # omni.resolve.ResolvedModel
    family: FamilySpec
    env: Any  # omni.environment.Environment
    pipe: Any = None
    device: str = "cpu"
    dtype: str = "float32"
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    component_overrides: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # the generation arguments the pipeline will be called with, known before the post-load stages
    # when omni loads the model (empty for omni.optimize on a user's pipeline)
    generation: dict[str, Any] = field(default_factory=dict)
    # the user opted in to weights stored as pickle (.bin/.pt), whose loading runs code from the file
    # (``--allow-pickle`` / ``allow_pickle: true``); loaders refuse such weights otherwise
    allow_pickle: bool = False
    notes: list[str] = field(default_factory=list)
    applied: dict[str, Applied] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # applied step name -> stage
    # every step of the plan -> its stage, including the steps that run after yours (a LoRA prepares
    # for hot-swapping when compile is planned); a planned step may still skip at run time
    planned: dict[str, str] = field(default_factory=dict)

    def denoisers(self) -> list[tuple[str, Any]]:
        """The pipeline's denoiser components present on this pipeline, as (name, module)."""
        out = []
        for name in self.family.facts.denoiser_components:
            module = getattr(self.pipe, name, None)
            if module is not None:
                out.append((name, module))
        return out
