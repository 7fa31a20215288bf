"""omni.sdk: everything a plugin needs, and the only omni module a bundled plugin imports (a test
scans their imports). Third-party plugins get exactly the same surface.

* declarations: ``FamilySpec``, ``FamilyFacts``, ``Limits``, ``OptimizationSpec``, ``Option``,
  ``ConfigKey``, ``Needs``, ``ModelSpec``, ``PresetSpec``, ``Stage``, ``Support``, ``Claim``,
  ``supported``, ``unsupported``, and the ``hookimpl`` marker;
* the step contract: ``Applied``, ``Skip``, ``RunContext``, ``Step`` and the errors;
* plumbing defined once: denoiser and block discovery, hit-flag recording, diffusers hook-registry
  refresh, model/component folders, meta-device components, omni's cache dir, parameter bytes;
* running models from a plugin (calibration, conversion): ``registry()``, ``resolve()``,
  ``load()``, and ``omni.Engine`` for generations;
* ``tiny``: offline tokenizers and cached builds for random-weight test models;
* CLI helpers for ``omni_register_commands``: ``handle_errors``, ``console``, ``err``, ``print_json``.

Importing it is cheap: torch and diffusers are imported inside the helpers that need them.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omni import tiny
from omni.errors import DeclarationError, ModelLoadError, OmniError, OptimizationFailed, UsageError
from omni.hookspecs import hookimpl
from omni.runtime.context import Applied, RunContext, Skip, Step
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

if TYPE_CHECKING:
    from omni.registry import Registry
    from omni.resolve import ResolvedModel
    from omni.runtime.session import Session

__all__ = [
    "Applied", "Claim", "ConfigKey", "DeclarationError", "FamilyFacts", "FamilySpec", "HitFlags", "Limits",
    "ModelLoadError", "ModelSpec", "Needs", "NO_DENOISER", "OmniError", "OptimizationFailed", "OptimizationSpec",
    "Option", "PresetSpec", "RunContext", "Skip", "Stage", "Step", "Support", "UsageError", "blocks", "cache_dir",
    "component_class", "component_folder", "console", "denoisers", "err", "handle_errors", "hookimpl", "load",
    "load_diffusers", "local_folder", "meta_component", "model_folder", "param_bytes", "print_json",
    "quiet_libraries", "read_model_index", "refresh_hooks", "registry", "resolve", "supported", "tensor_bytes",
    "tiny", "top_level_lists", "unsupported",
]

NO_DENOISER = "the pipeline has no denoiser component"


# ---------------------------------------------------------------------------- denoisers and blocks
def denoisers(ctx: RunContext) -> list[tuple[str, Any]]:
    """The family's denoiser components present on this pipeline; raises ``Skip`` when there is none."""
    found = ctx.denoisers()
    if not found:
        raise Skip(NO_DENOISER)
    return found


def blocks(module: Any, attrs: tuple[str, ...] | None = None) -> list[tuple[str, Any]]:
    """``(name, block)`` of the repeated blocks of a denoiser: the ``ModuleList``s named by ``attrs``
    (a family's ``block_attrs``), or, without them, the lists diffusers' own block caches look for."""
    import torch

    if not attrs:
        from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS

        attrs = tuple(_ALL_TRANSFORMER_BLOCK_IDENTIFIERS)
    out = []
    for name in attrs:
        container = getattr(module, name, None)
        if isinstance(container, torch.nn.ModuleList):
            out.extend((f"{name}.{i}", block) for i, block in enumerate(container))
    return out


def top_level_lists(module: Any) -> int:
    """How many modules the top-level ``ModuleList``/``Sequential`` children hold (what block-level
    group offloading groups)."""
    import torch

    lists = (torch.nn.ModuleList, torch.nn.Sequential)
    return sum(len(child) for child in module.children() if isinstance(child, lists))


def refresh_hooks(module: Any) -> None:
    """diffusers 0.42 caches each hook registry's list of child registries at the first
    ``cache_context``; the functional ``apply_*`` calls do not invalidate it. Call this after
    installing or removing diffusers hooks below ``module``, or a pipeline that already ran keeps
    sending its cache contexts to the old hooks."""
    from diffusers.hooks import HookRegistry

    HookRegistry.check_if_exists_or_initialize(module).invalidate_child_registries_cache()


class HitFlags:
    """Per-denoiser-call ``"computed"``/``"reused"`` flags of a step cache. ``record`` while the
    pipeline runs; pass ``flags.read`` as ``Applied(stats=...)`` (each read returns and clears)."""

    def __init__(self) -> None:
        self.flags: list[str] = []

    def record(self, computed: bool) -> None:
        self.flags.append("computed" if computed else "reused")

    def read(self) -> list[str]:
        out = list(self.flags)
        self.flags.clear()
        return out


# ---------------------------------------------------------------------------- folders and components
def local_folder(source: str) -> str:
    """A local folder for a pipeline source: a folder, or a hub id already in the local HF cache."""
    if os.path.isdir(source):
        return source
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(source, local_files_only=True))
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{source} is not in the local Hugging Face cache ({type(exc).__name__})") from None


def model_folder(ctx: RunContext) -> str:
    """The local diffusers folder of the run's model (a named model is built first)."""
    from omni.loading import model_source

    return local_folder(model_source(ctx))


def read_model_index(folder: str) -> dict[str, Any]:
    """``model_index.json`` of a diffusers folder; a missing or broken one is a ``UsageError``."""
    path = os.path.join(folder, "model_index.json")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} does not hold a mapping")
    return data


def component_folder(ctx: RunContext, component: str) -> str | None:
    """The folder of one component of the run's model, or None when it has none."""
    folder = os.path.join(model_folder(ctx), component)
    return folder if os.path.isdir(folder) else None


def component_class(class_name: str) -> Any:
    import diffusers

    cls = getattr(diffusers, class_name, None)
    if cls is None:
        raise UsageError(f"diffusers has no class {class_name}")
    return cls


def meta_component(folder: str, class_name: str) -> Any:
    """A diffusers component instantiated from its config on the meta device (no weights read)."""
    from accelerate import init_empty_weights

    cls = component_class(class_name)
    with init_empty_weights(), open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        return cls.from_config(cls.load_config(folder))


def cache_dir(*parts: str) -> Path:
    """A folder under omni's cache dir (``$OMNI_CACHE_DIR`` or ``~/.cache/omni``), created on demand."""
    from omni.tiny import omni_cache_root

    path = omni_cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def tensor_bytes(t: Any) -> int:
    from omni.runtime.measure import tensor_bytes as _tb

    return _tb(t)


def param_bytes(pipe: Any) -> dict[str, int]:
    from omni.runtime.measure import param_bytes as _pb

    return _pb(pipe)


# ---------------------------------------------------------------------------- models from a plugin
def registry() -> Registry:
    """The process's registry of plugins and declarations."""
    from omni.plugins import get_registry

    return get_registry()


def resolve(model: str) -> ResolvedModel:
    """Resolve MODEL (named model, folder, cached hub id) to its family, without loading anything."""
    from omni.resolve import resolve_model

    return resolve_model(model, registry())


def load(model: str, *, device: str | None = None, dtype: str | None = None, **config: Any) -> Session:
    """Load ``model`` (optionally optimized: ``optimize=[...]``, ``sets={...}``) into a Session
    (``.pipe``, ``.ctx``, ``.family``, ``.prepared``)."""
    from omni.runtime.session import Session, prepare

    return Session.load(prepare(model, registry=registry(), **config), device=device, dtype=dtype)


def load_diffusers(ctx: RunContext, step: Step) -> Any:
    """omni's default family loader (``DiffusionPipeline.from_pretrained``, offline), for families
    that wrap it."""
    from omni.loading import load_diffusers as _load

    return _load(ctx, step)


def quiet_libraries() -> None:
    """Silence diffusers'/transformers' progress bars and info logs (omni shows its own progress)."""
    from omni.loading import quiet_libraries as _quiet

    _quiet()


# ---------------------------------------------------------------------------- CLI helpers
_CLI = ("handle_errors", "console", "err", "print_json")


def __getattr__(name: str) -> Any:
    if name in _CLI:
        from omni.cli import common

        return getattr(common, name)
    raise AttributeError(f"module 'omni.sdk' has no attribute {name!r}")
