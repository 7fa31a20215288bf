"""Finding a pipeline component's folder and class, and building it on the meta device (no weights read)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from omni.errors import UsageError


def local_folder(source: str) -> str:
    """A local folder for a pipeline source: a folder, or a hub id already in the local HF cache."""
    if os.path.isdir(source):
        return source
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(source, local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{source} is not in the local Hugging Face cache ({type(exc).__name__})") from None


def read_index(folder: str) -> dict[str, Any]:
    path = os.path.join(folder, "model_index.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def pick_component(index: dict[str, Any], family, requested: str | None, what: str) -> tuple[str, str]:
    """``(component, diffusers class name)``: the requested one or the family's first denoiser."""
    entries = {k: v for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v and v[0]}
    if requested:
        if requested not in entries:
            raise UsageError(f"{what}: the pipeline has no component {requested!r} "
                             f"(components: {', '.join(sorted(entries))})")
        name = requested
    else:
        name = next((c for c in family.facts.denoiser_components if c in entries), None)
        if name is None:
            raise UsageError(f"{what}: none of the {family.name} denoiser components "
                             f"({', '.join(family.facts.denoiser_components)}) is in this pipeline")
    library, class_name = entries[name][:2]
    if library != "diffusers":
        raise UsageError(f"{what}: {name} is a {library} {class_name}; GGUF here covers diffusers components")
    return name, class_name


def component_class(class_name: str):
    import diffusers

    cls = getattr(diffusers, class_name, None)
    if cls is None:
        raise UsageError(f"diffusers has no class {class_name}")
    return cls


def meta_model(folder: str, class_name: str):
    """The component instantiated from its config on the meta device."""
    from accelerate import init_empty_weights

    cls = component_class(class_name)
    with init_empty_weights(), open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        return cls.from_config(cls.load_config(folder))


def linear_weight_names(model) -> set[str]:
    import torch

    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
