"""omni: one request surface for diffusion-inference optimizations, built from plugins.

Importing ``omni`` is cheap (no torch); it keeps the libraries' import-time warnings out of the
output (:mod:`omni.noise`). The run API (``omni.run``, ``omni.optimize``,
``omni.Engine``) imports torch/diffusers lazily on first use. Plugin authors import
:mod:`omni.sdk`.
"""

from __future__ import annotations

from typing import Any

from omni.hookspecs import hookimpl, hookspec
from omni.noise import quiet_import_noise as _quiet_import_noise
from omni.specs import (
    Claim,
    ConfigKey,
    FamilyFacts,
    FamilySpec,
    Limits,
    ModelSpec,
    Needs,
    OptimizationSpec,
    Option,
    PresetSpec,
    Stage,
    Support,
    supported,
    unsupported,
)

__version__ = "0.2.0"

_quiet_import_noise()

__all__ = [
    "__version__", "hookimpl", "hookspec", "Claim", "ConfigKey", "FamilyFacts", "FamilySpec", "Limits", "ModelSpec",
    "Needs", "OptimizationSpec", "Option", "PresetSpec", "Stage", "Support", "supported", "unsupported", "Applied",
    "Skip", "Engine", "Job", "Result", "Optimized", "QueueFull", "optimize", "run",
]

_LAZY = {
    "Applied": ("omni.runtime.context", "Applied"),
    "Skip": ("omni.runtime.context", "Skip"),
    "Engine": ("omni.runtime.engine", "Engine"),
    "Job": ("omni.runtime.engine", "Job"),
    "Result": ("omni.runtime.engine", "Result"),
    "QueueFull": ("omni.runtime.engine", "QueueFull"),
    "Optimized": ("omni.runtime.api", "Optimized"),
    "optimize": ("omni.runtime.api", "optimize"),
    "run": ("omni.runtime.api", "run"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'omni' has no attribute {name!r}")
