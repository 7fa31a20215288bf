"""Objects passed to and returned by the stage hooks. Plain Python; torch is never imported here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omni.plugins import PluginRef
from omni.specs import FamilySpec, OptimizationSpec


class Skip(Exception):
    """Raise from a stage hook when the optimization cannot apply to *this* pipeline/host.

    The run reports it as ``skipped`` with the message as reason (strict mode turns it into a
    failure). Raise it before modifying anything.
    """


@dataclass
class Applied:
    """What a stage hook did.

    * ``details``: facts for the report (``{"scheme": "int8_weight_only", "bytes_after": 123}``).
    * ``undo``: callable restoring the pipeline (None when irreversible or nothing to undo).
    * ``stats``: callable returning per-denoising-step ``"computed"``/``"reused"`` flags recorded
      since the previous call (caches only).
    """

    details: dict[str, Any] = field(default_factory=dict)
    undo: Callable[[], None] | None = None
    stats: Callable[[], list[str]] | None = None


@dataclass(frozen=True)
class Step:
    """One planned step: an optimization (or the family load when ``family`` is set)."""

    name: str
    stage: str
    plugin: PluginRef
    options: dict[str, Any] = field(default_factory=dict)
    optimization: OptimizationSpec | None = None
    family: FamilySpec | None = None


@dataclass
class RunContext:
    """Mutable state of one run, shared by the stage hooks."""

    model: Any  # omni.resolve.ResolvedModel
    family: FamilySpec
    env: Any  # omni.environment.Environment
    pipe: Any = None
    device: str = "cpu"
    dtype: str = "float32"
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    component_overrides: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # the generation arguments of the coming pipeline call, known before the post-load stages
    # when omni loads the model (empty for omni.optimize on a user's pipeline)
    generation: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    applied: dict[str, Applied] = field(default_factory=dict)

    def denoisers(self) -> list[tuple[str, Any]]:
        """The pipeline's denoiser components present on this pipeline, as (name, module)."""
        out = []
        for name in self.family.facts.denoiser_components:
            module = getattr(self.pipe, name, None)
            if module is not None:
                out.append((name, module))
        return out
