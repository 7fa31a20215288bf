"""Typed, frozen declarations that plugins yield.

Everything here is plain data: building a declaration never imports torch, diffusers or
transformers, so ``omni plugins`` / ``omni capabilities`` stay fast. Behaviour travels with the
declaration as an import path string (``"package.module:attribute"``, imported only when a run
selects it) or a callable (in-process plugins).

Validation happens in ``__post_init__`` and raises :class:`omni.errors.DeclarationError` with a
message naming the offending field; the plugin manager turns that into an ``invalid`` plugin.
"""

from omni.specs.base import (
    Claim,
    ConfigKey,
    Needs,
    Option,
    Stage,
    Support,
    supported,
    unsupported,
)
from omni.specs.family import FamilyFacts, FamilySpec, Limits
from omni.specs.model import ModelSpec, PresetSpec
from omni.specs.optimization import OptimizationSpec

__all__ = [
    "Stage",
    "Support",
    "Claim",
    "Option",
    "ConfigKey",
    "Needs",
    "FamilyFacts",
    "FamilySpec",
    "Limits",
    "OptimizationSpec",
    "ModelSpec",
    "PresetSpec",
    "supported",
    "unsupported",
]
