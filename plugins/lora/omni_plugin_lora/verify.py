"""Random adapters made for a model's denoiser, for ``omni verify`` (``OptimizationSpec.verify_prepare``)
and for tests: peft LoRA layers on the attention projections (``to_q``, ``to_k``, ``to_v``,
``to_out.0``: diffusers' attention naming in UNets and DiTs alike), random ``lora_A`` and ``lora_B``,
saved with the pipeline class's own ``save_lora_weights`` (the format its loader reads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omni.sdk import component_class, model_components, model_folder, read_model_index, registry, resolve

ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")


def random_adapter(model: str, out: str | Path, *, rank: int = 4, seed: int = 0,
                   targets: tuple[str, ...] = ATTENTION, magnitude: float = 1.0, family: str | None = None) -> Path:
    """Write a random LoRA for ``model``'s first denoiser to ``out`` (a .safetensors file); returns it.
    ``magnitude`` multiplies ``lora_B`` (how far the adapter moves the output)."""
    import torch
    from peft import LoraConfig

    resolved = resolve(model)
    folder = model_folder(resolved)
    facts = registry().family(family or resolved.family).spec.facts
    components = model_components(folder)
    # the first of the family's denoiser components this model has (a catch-all family names several)
    name = next((n for n in facts.denoiser_components if n in components), None)
    if name is None:
        raise ValueError(f"{model} has none of the denoiser components {', '.join(facts.denoiser_components)}")
    _, class_name = components[name]
    pipe_cls = component_class(read_model_index(folder)["_class_name"])
    torch.manual_seed(seed)
    module = component_class(class_name).from_pretrained(os.path.join(folder, name))
    module.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), init_lora_weights=False))
    with torch.no_grad():
        for key, param in module.named_parameters():
            if "lora_B" in key:
                param.normal_(0.0, 0.05 * magnitude)
    return write_adapter(pipe_cls, name, module, Path(out), {"omni.family": resolved.family})


def write_adapter(pipe_cls: Any, component: str, module: Any, out: Path, metadata: dict[str, str]) -> Path:
    """``module``'s peft LoRA layers written by the pipeline class's own ``save_lora_weights`` (the
    format its loader reads: peft keys and LoRA metadata), then rewritten to ``out`` with omni's
    ``metadata`` added (``omni.family``, ...). Returns ``out``."""
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.stem}-save"
    pipe_cls.save_lora_weights(tmp, **{f"{component}_lora_layers": get_peft_model_state_dict(module),
                                       f"{component}_lora_adapter_metadata": module.peft_config["default"].to_dict()})
    written = tmp / "pytorch_lora_weights.safetensors"
    with safe_open(written, "pt") as fh:
        merged = {**(fh.metadata() or {}), **metadata}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    save_file(tensors, out, metadata=merged)
    written.unlink()
    tmp.rmdir()
    return out


def prepare(model: str, workdir: Any) -> dict[str, Any]:
    """``verify_prepare``: a random adapter for ``model``, loaded at scale 0 (the run must reproduce the
    base output exactly)."""
    path = random_adapter(model, Path(workdir) / f"lora-{model}.safetensors")
    return {"paths": (f"{path}:0",)}
