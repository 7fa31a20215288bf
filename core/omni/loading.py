"""Default loading of diffusers pipelines, offline (``local_files_only``).

Family plugins point ``FamilySpec.load`` here unless they need something special. Load-time
optimizations (GGUF, torchao) have already edited ``ctx.load_kwargs`` /
``ctx.component_overrides`` when this runs.
"""

from __future__ import annotations

import os
from typing import Any

from omni.errors import ModelLoadError, UsageError
from omni.behaviour import resolve


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def model_source(ctx) -> str:
    """Local folder for the resolved model: a built named model, a local folder, or a cached hub id."""
    m = ctx.model
    if m.model is not None:
        built = resolve(m.model.build)()
        return str(built)
    if m.path is not None:
        return m.path
    if m.hub_id is not None:
        return m.hub_id
    raise UsageError(
        f"{m.ref!r} names a family, not a model: pass a local folder, a hub id already in the HF cache, "
        f"or a named model such as tiny-{m.family}"
    )


def load_diffusers(ctx, step) -> Any:
    """Build the pipeline with ``DiffusionPipeline.from_pretrained(..., local_files_only=True)``."""
    from diffusers import DiffusionPipeline

    quiet_libraries()
    source = model_source(ctx)
    kwargs = dict(ctx.load_kwargs)
    kwargs.setdefault("dtype", torch_dtype(ctx.dtype))
    for component, make in ctx.component_overrides.items():
        folder = os.path.join(source, component) if os.path.isdir(source) else None
        kwargs[component] = make(folder)
    try:
        pipe = DiffusionPipeline.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, EnvironmentError, ValueError) as exc:
        where = source if os.path.isdir(str(source)) else f"the local Hugging Face cache ({_hf_cache()})"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load {ctx.model.ref!r} from {where}: {first}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _hf_cache() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        return HF_HUB_CACHE
    except ImportError:  # pragma: no cover
        return "~/.cache/huggingface/hub"


def quiet_libraries() -> None:
    """Silence the libraries' own progress bars and info logs (omni shows its own progress)."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
