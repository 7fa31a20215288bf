"""Inferring a family's facts for one pipeline, written here because diffusers records no such facts.

From ``model_index.json`` alone (no weights, no torch import): the denoiser components and their kind
(UNet or transformer, from the component and class names), the modality and task (from the pipeline, denoiser
and VAE class names; never from the scheduler or the text encoders, which video and image pipelines share),
the text encoders. From the loaded pipeline (``pipe`` given): the denoiser's block stacks (a ``ModuleList`` of
two or more blocks of one class that the denoiser's ``forward`` iterates on its own; never a UNet's
resolution stages, never lists interleaved with another list), the denoiser's ``_repeated_blocks``,
``fuse_qkv_projections``, convolution-heavy (a UNet whose convolutions are all 2-D: channels_last has no
4-D layout for a 3-D UNet), the VAE's tiling/slicing, the guidance (from the pipeline's ``__call__``
signature), and whether ``__call__`` uses ``cache_context``. Every inference is listed in the notes the report
carries."""

from __future__ import annotations

import re
from typing import Any

from omni.sdk import FamilyFacts

VIDEO = re.compile(r"Video|AnimateDiff|Latte|Mochi|Allegro|I2VGen|Wan|LTX|SkyReels|EasyAnimate|ConsisID|CogVideo|"
                   r"3D|Temporal|Motion")
TASKS = ((re.compile(r"Inpaint"), "inpaint"), (re.compile(r"Img2Img|ImageToImage"), "i2i"),
         (re.compile(r"ImageToVideo|I2V|Img2Vid"), "i2v"), (re.compile(r"VideoToVideo|V2V|Vid2Vid"), "v2v"),
         (re.compile(r"Edit|Kontext"), "edit"))
DENOISER_CLASS = re.compile(r"Transformer|UNet|DiT")
NOT_DENOISER = re.compile(r"Autoencoder|VQModel|ControlNet|Adapter")
# ``for block in self.blocks:`` / ``for i, block in enumerate(self.transformer_blocks):`` -> the list's name
ITERATED = re.compile(r"for\s[^\n]*?\bin\s+(?:enumerate\(\s*)?self\.(\w+)\s*\)?\s*:")


def _components(index: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {k: (v[0], v[1]) for k, v in index.items()
            if not k.startswith("_") and isinstance(v, (list, tuple)) and len(v) == 2 and v[0] and v[1]}


def _denoisers(comps: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    """diffusers components named like a denoiser (``transformer``, ``unet``, ``transformer_2`` ...) or whose
    class is one (``...Transformer...``, ``UNet...``, ``...DiT...``: HunyuanDiT2DModel, LuminaNextDiT2DModel)."""
    out = []
    for name, (library, cls) in comps.items():
        if library != "diffusers" or NOT_DENOISER.search(cls):
            continue
        if DENOISER_CLASS.search(cls) or re.fullmatch(r"(transformer|unet)(_\d+)?", name):
            out.append((name, cls))
    return out


def _source(fn: Any) -> str:
    import inspect

    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _blocks(module: Any) -> tuple[str, ...]:
    """The block stacks of a transformer denoiser: top-level ModuleLists of two or more modules of one class
    that ``forward`` iterates on its own (Latte zips its spatial and temporal lists: a block cache that
    skips the tail of one list would skip the other's blocks in between, so neither is claimed)."""
    import torch

    iterated = set(ITERATED.findall(_source(type(module).forward)))
    out = []
    for name, child in module.named_children():
        if (isinstance(child, torch.nn.ModuleList) and len(child) >= 2 and len({type(b) for b in child}) == 1
                and name in iterated):
            out.append(name)
    return tuple(out)


def _convs_2d(module: Any) -> bool:
    """The module has convolutions and all of them are 2-D."""
    import torch

    kinds = {type(m) for m in module.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)}
    return bool(kinds) and all(issubclass(k, torch.nn.Conv2d) for k in kinds)


def _guidance(pipe: Any) -> str:
    """From ``__call__``'s parameters: a negative prompt means classifier-free guidance; a guidance scale
    without one means guidance distilled into the model (LCM); neither means none."""
    import inspect

    try:
        params = inspect.signature(type(pipe).__call__).parameters
    except (TypeError, ValueError):
        return "cfg"
    if "negative_prompt" in params:
        return "cfg"
    return "distilled" if "guidance_scale" in params else "none"


def facts(index: dict[str, Any], pipe: Any = None) -> tuple[FamilyFacts, list[str]]:
    """-> (facts, notes saying what was inferred from what)."""
    cls = str(index.get("_class_name", "?"))
    comps = _components(index)
    denoisers = _denoisers(comps)
    if not denoisers:
        raise ValueError(f"{cls}: model_index.json names no diffusers transformer or UNet component")
    names = tuple(n for n, _ in denoisers)
    kind = "unet" if any("UNet" in c for _, c in denoisers) else "dit"
    vae = [c for n, (lib, c) in comps.items() if lib == "diffusers" and n.startswith(("vae", "movq", "vqgan"))]
    classes = " ".join([cls] + [c for _, c in denoisers] + vae)
    modality = "video" if VIDEO.search(classes) else "image"
    task = next((t for pattern, t in TASKS if pattern.search(cls)), "t2v" if modality == "video" else "t2i")
    if modality == "image" and task in ("i2v", "v2v"):
        modality = "video"
    encoders = tuple(sorted(n for n in comps if n.startswith("text_encoder")))
    conv_heavy = kind == "unet" and not any("3D" in c or "Temporal" in c for _, c in denoisers)
    notes = [(f"generic family for {cls}: denoiser {kind} ({', '.join(f'{n}={c}' for n, c in denoisers)}), "
              f"modality {modality}, task {task}, guidance assumed cfg (from model_index.json)")]
    fields: dict[str, Any] = {"denoiser": kind, "denoiser_components": names, "modality": modality,
                              "tasks": (task,), "guidance": "cfg", "text_encoders": encoders,
                              "conv_heavy": conv_heavy, "vae_tiling": False, "vae_slicing": False}
    if pipe is not None:
        modules = [getattr(pipe, n, None) for n in names]
        modules = [m for m in modules if m is not None]
        block_attrs = () if kind == "unet" else tuple(dict.fromkeys(a for m in modules for a in _blocks(m)))
        vae_module = getattr(pipe, "vae", None)
        fields.update(
            block_attrs=block_attrs,
            repeated_blocks=any(getattr(m, "_repeated_blocks", None) for m in modules),
            qkv_fusion=any(hasattr(m, "fuse_qkv_projections") for m in modules),
            conv_heavy=kind == "unet" and bool(modules) and all(_convs_2d(m) for m in modules),
            guidance=_guidance(pipe),
            vae_tiling=vae_module is not None and hasattr(vae_module, "enable_tiling"),
            vae_slicing=vae_module is not None and hasattr(vae_module, "enable_slicing"),
            cache_context="cache_context" in _source(type(pipe).__call__))
        notes.append("from the loaded modules: " + ", ".join(
            f"{k}={v}" for k, v in fields.items()
            if k in ("block_attrs", "repeated_blocks", "qkv_fusion", "conv_heavy", "guidance", "vae_tiling",
                     "vae_slicing", "cache_context")))
    return FamilyFacts(**fields), notes
