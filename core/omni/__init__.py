"""omni: one request surface for diffusion-inference optimizations, built from plugins.

Importing ``omni`` is cheap (no torch). The run API (``omni.optimize``, ``omni.run``) imports
torch/diffusers lazily on first use.
"""

from __future__ import annotations

from typing import Any

from omni.hookspecs import hookimpl, hookspec
from omni.specs import (
    Claim,
    ConfigKey,
    FamilyFacts,
    FamilySpec,
    ModelSpec,
    Needs,
    OptimizationSpec,
    Option,
    Stage,
    Support,
    TeaCacheFacts,
    supported,
    unsupported,
)

__version__ = "0.1.0"
PLUGIN_API = 1

__all__ = [
    "__version__", "PLUGIN_API", "hookimpl", "hookspec", "Claim", "ConfigKey", "FamilyFacts", "FamilySpec",
    "ModelSpec", "Needs", "OptimizationSpec", "Option", "Stage", "Support", "TeaCacheFacts", "supported",
    "unsupported", "Applied", "Skip", "optimize", "run",
]

_LAZY = {
    "Applied": ("omni.runtime.context", "Applied"),
    "Skip": ("omni.runtime.context", "Skip"),
    "optimize": ("omni.runtime.api", "optimize"),
    "run": ("omni.runtime.api", "run"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'omni' has no attribute {name!r}")
