"""Which pipeline component a GGUF file holds, and which of its tensors are Linear weights."""

from __future__ import annotations

from typing import Any

from omni.sdk import UsageError


def pick_component(components: dict[str, tuple[str, str]], family: Any, requested: str | None,
                   what: str) -> tuple[str, str]:
    """``(component, diffusers class name)`` among a folder's ``components`` (``omni.sdk.model_components``):
    the requested one or the family's first denoiser."""
    if requested:
        if requested not in components:
            raise UsageError(f"{what}: the pipeline has no component {requested!r} "
                             f"(components: {', '.join(sorted(components))})")
        name = requested
    else:
        first: str | None = next((c for c in family.facts.denoiser_components if c in components), None)
        if first is None:
            raise UsageError(f"{what}: none of the {family.name} denoiser components "
                             f"({', '.join(family.facts.denoiser_components)}) is in this pipeline")
        name = first
    library, class_name = components[name]
    if library != "diffusers":
        raise UsageError(f"{what}: {name} is a {library} {class_name}; GGUF here covers diffusers components")
    return name, class_name


def linear_weight_names(model: Any) -> set[str]:
    import torch

    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
