"""omni.sdk: everything a plugin needs, and the only omni module a bundled plugin imports (a test
scans their imports). Third-party plugins get exactly the same surface.

* declarations: ``FamilySpec``, ``FamilyFacts``, ``Limits``, ``OptimizationSpec``, ``Option``,
  ``ConfigKey``, ``Needs``, ``ModelSpec``, ``PresetSpec``, ``Stage``, ``Support``, ``Claim``,
  ``supported``, ``unsupported``, and the ``hookimpl`` marker;
* the step contract: ``Applied``, ``Skip``, ``RunContext``, ``Step`` and the errors;
* plumbing defined once: denoiser and block discovery, hit-flag recording, diffusers hook-registry
  refresh and snapshot (undo leaves no empty registry or instance ``forward`` behind), model/component folders, meta-device components, omni's cache dir, parameter bytes;
* running models from a plugin (calibration, conversion): ``registry()``, ``resolve()``,
  ``load()``, and ``omni.Engine`` for generations;
* ``tiny``: offline tokenizers and cached builds for random-weight test models;
* CLI helpers for ``omni_register_commands``: ``handle_errors``, ``console``, ``err``, ``print_json``;
* serving an Engine (``omni serve``): ``engine_options`` (``omni run``'s config flags -> Engine
  arguments), ``Engine``, ``EngineLimits``, ``FieldError``, ``QueueFull``, ``EngineClosed``,
  ``JobCancelled``, ``save_output`` (PNG/MP4/GIF written whole, then renamed), ``PARTIAL_GLOB``
  (what a writer killed mid-file leaves) and ``open_image`` (an uploaded image decoded with the checks
  every request input gets: unreadable or decompression-bomb files are a ``FieldError``);
* files a command writes or reads: ``check_output_file(path, flag, force=)`` (checked before any work:
  not a folder, a writable place, an existing file only with ``--force``), ``check_component_weights``
  (safetensors that open; pickle only when the user opted in);
* measuring variants (``omni tune``): ``psnr``, ``ssim`` (quality against a baseline output),
  ``Environment`` (what this host provides, for ``matrix(registry, Environment.detect())``),
  ``device_name`` (the device a figure was measured on, in words), ``behaviour`` (a declaration's
  import path or callable -> the callable, e.g. ``ModelSpec.adherence``), ``PairedRatio`` (paired
  runs -> a ratio with its interval, as ``omni bench`` reports it).

Importing it is cheap: torch and diffusers are imported inside the helpers that need them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from collections.abc import Iterable
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
    "check_component_weights", "check_output_file", "component_class", "component_folder", "console", "denoisers", "engine_options", "err", "handle_errors",
    "hook_snapshot", "hookimpl", "keep_attributes", "load", "load_diffusers", "local_folder", "matrix",
    "meta_component", "model_components", "model_folder", "param_bytes", "print_json", "quantized_kind", "quiet_libraries", "read_model_index", "refresh_hooks",
    "registry", "resolve", "supported", "tensor_bytes", "tiny", "top_level_lists", "unsupported",
    "Engine", "EngineClosed", "EngineLimits", "FieldError", "JobCancelled", "PARTIAL_GLOB", "QueueFull", "open_image", "save_output",
    "Environment", "PairedRatio", "behaviour", "device_name", "psnr", "ssim",
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
    out: list[tuple[str, Any]] = []
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


_ABSENT = object()


def hook_snapshot(module: Any) -> Callable[[], None]:
    """Remember, for every module under ``module``, whether it has a diffusers hook registry and an
    instance ``forward``. Call the returned function after your undo removed its hooks (or patches):
    on every module left without hooks it drops a registry that did not exist before and puts the
    instance ``forward`` back as it was (``HookRegistry.remove_hook`` writes the bound class method
    onto the instance), so the pipeline's fingerprint is the one before the step."""
    saved = {id(m): ("_diffusers_hook" in vars(m), vars(m).get("forward", _ABSENT)) for m in module.modules()}

    def restore() -> None:
        for m in module.modules():
            registry = vars(m).get("_diffusers_hook")
            if registry is not None and registry.hooks:
                continue  # a hook of another step is still installed here
            had_registry, forward = saved.get(id(m), (False, _ABSENT))
            if registry is not None and not had_registry:
                del m.__dict__["_diffusers_hook"]
            if forward is _ABSENT:
                m.__dict__.pop("forward", None)
            else:
                m.__dict__["forward"] = forward

    return restore


def keep_attributes(step: Step, obj: Any, prefixes: tuple[str, ...]) -> None:
    """Register an undo on ``step`` that puts back the instance attributes of ``obj`` whose names
    start with one of ``prefixes`` as they are now (values restored, attributes added since deleted).
    Call it before the change that sets them (``enable_tiling``, ``enable_model_cpu_offload``)."""
    saved = {k: v for k, v in vars(obj).items() if k.startswith(prefixes)}

    def restore() -> None:
        for key in [k for k in vars(obj) if k.startswith(prefixes) and k not in saved]:
            delattr(obj, key)
        for key, value in saved.items():
            setattr(obj, key, value)

    step.on_undo(restore)


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
    """A local folder for a pipeline source: a folder, or a hub id already in the local HF cache (a
    one-line ``UsageError`` otherwise)."""
    from omni.loading import local_folder as _local_folder

    return _local_folder(source)


def model_folder(target: RunContext | ResolvedModel) -> str:
    """The local diffusers folder of a run's model, or of a model from ``resolve(...)`` (a named model
    is built first; a family name is a ``UsageError``)."""
    from types import SimpleNamespace

    from omni.loading import model_source

    model = target.model if isinstance(target, RunContext) else target
    return local_folder(model_source(SimpleNamespace(model=model)))


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


def model_components(folder: str) -> dict[str, tuple[str, str]]:
    """The components a diffusers folder's ``model_index.json`` lists: name -> (library, class name);
    entries without a class (``[null, null]``) and private keys are left out."""
    return {name: (value[0], value[1]) for name, value in read_model_index(folder).items()
            if not name.startswith("_") and isinstance(value, list) and len(value) == 2 and value[0] and value[1]}


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


def quantized_kind(module: Any) -> str | None:
    """The class name of the first parameter of ``module`` that is a tensor subclass (torchao,
    GGUF, ...), or None when every weight is a plain tensor."""
    return next((type(p).__name__ for p in module.parameters() if type(p).__name__ not in ("Parameter", "Tensor")),
                None)


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


def matrix(registry: Registry, env: Any = None) -> Any:
    """The compatibility matrix over ``registry`` (``env``: an Environment for this host's availability,
    None for the published view): ``.cell(family, optimization)``, ``.plan(...)``, ``.optimization_names``."""
    from omni.matrix import CompatMatrix

    return CompatMatrix(registry, env=env)


def check_component_weights(folder: str, *, allow_pickle: bool) -> list[str]:
    """The weights files of one component folder are sound before anything reads them: every
    ``.safetensors`` opens (header and length checked), every shard an index names exists, and
    weights only in pickle form (``.bin``/``.pt``: unpickling runs code) are a ``UsageError`` unless
    ``allow_pickle``. Returns the pickle files that may load."""
    from omni.loading import check_component

    return check_component(folder, os.path.basename(folder.rstrip("/")), allow_pickle=allow_pickle)


def load_diffusers(ctx: RunContext, step: Step) -> Any:
    """omni's default family loader (``DiffusionPipeline.from_pretrained``, offline), for families
    that wrap it."""
    from omni.loading import load_diffusers as _load

    return _load(ctx, step)


def quiet_libraries() -> None:
    """Silence diffusers'/transformers' progress bars and info logs (omni shows its own progress)."""
    from omni.loading import quiet_libraries as _quiet

    _quiet()


# ---------------------------------------------------------------------------- engines from a command line
def engine_options(*, config: str | None = None, optimize: Iterable[str] = (), sets: Iterable[str] = (),
                   preset: str | None = None, strict: bool = False, device: str | None = None,
                   dtype: str | None = None) -> dict[str, Any]:
    """``omni.Engine`` keyword arguments from ``omni run``-style flags: ``--config FILE`` (YAML),
    ``--optimize a,b`` (repeatable), ``--set KEY=VALUE``, ``--preset``, ``--strict``, ``--device``,
    ``--dtype``. A bad value is a ``UsageError`` naming the flag (a dtype a pipeline cannot run in,
    ``cuda`` on a host without it); nothing is loaded."""
    from omni.config import load_yaml, parse_set
    from omni.loading import check_device
    from omni.options import parse_load_dtype, shown

    if device not in (None, "cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda, not {shown(device)}")
    if device is not None:
        try:
            check_device(device)
        except UsageError as exc:
            raise UsageError(f"--{exc}") from None
    if dtype is not None:
        try:
            dtype = parse_load_dtype(dtype)
        except ValueError as exc:
            raise UsageError(f"--dtype: {exc}") from None
    return {"config": load_yaml(config) if config else None,
            "optimize": [v.strip() for item in optimize for v in item.split(",") if v.strip()],
            "sets": parse_set(sets), "preset": preset, "strict": strict, "device": device, "dtype": dtype}


# ---------------------------------------------------------------------------- lazy names (CLI, serving)
_LAZY = {
    "handle_errors": ("omni.cli.common", "handle_errors"),
    "console": ("omni.cli.common", "console"),
    "err": ("omni.cli.common", "err"),
    "print_json": ("omni.cli.common", "print_json"),
    "Engine": ("omni.runtime.engine", "Engine"),
    "EngineClosed": ("omni.runtime.engine", "EngineClosed"),
    "JobCancelled": ("omni.runtime.engine", "JobCancelled"),
    "QueueFull": ("omni.runtime.engine", "QueueFull"),
    "EngineLimits": ("omni.runtime.request", "EngineLimits"),
    "FieldError": ("omni.runtime.request", "FieldError"),
    "open_image": ("omni.runtime.inputs", "open_image"),
    "save_output": ("omni.runtime.output", "save"),
    "check_output_file": ("omni.runtime.output", "check_target"),
    "PARTIAL_GLOB": ("omni.runtime.output", "PARTIAL_GLOB"),
    "psnr": ("omni.verify", "psnr"),
    "ssim": ("omni.bench", "ssim"),
    "Environment": ("omni.environment", "Environment"),
    "device_name": ("omni.environment", "device_name"),
    "behaviour": ("omni.behaviour", "resolve"),
    "PairedRatio": ("omni.stats", "PairedRatio"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'omni.sdk' has no attribute {name!r}")
