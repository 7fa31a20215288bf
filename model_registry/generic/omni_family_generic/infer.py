"""Inferring a family's facts for one pipeline, written here because diffusers records no such facts.

From ``model_index.json`` alone (no weights, no torch import): the denoiser components and their kind
(UNet or transformer, from the class names), the modality and task (from the pipeline and component class
names), the text encoders. From the loaded pipeline (``pipe`` given): repeated block lists, the denoiser's
``_repeated_blocks``, ``fuse_qkv_projections``, the VAE's tiling/slicing, and whether the pipeline's
``__call__`` uses ``cache_context``. Every inference is listed in the notes the report carries."""

from __future__ import annotations

import re
from typing import Any

from omni.sdk import FamilyFacts

VIDEO = re.compile(r"Video|AnimateDiff|Latte|Mochi|Allegro|I2VGen|Wan|LTX|SkyReels|EasyAnimate|ConsisID|CogVideo|"
                   r"3D|Temporal|Motion")
TASKS = ((re.compile(r"Inpaint"), "inpaint"), (re.compile(r"Img2Img|ImageToImage"), "i2i"),
         (re.compile(r"ImageToVideo|I2V|Img2Vid"), "i2v"), (re.compile(r"VideoToVideo|V2V|Vid2Vid"), "v2v"),
         (re.compile(r"Edit|Kontext"), "edit"))


def _components(index: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {k: (v[0], v[1]) for k, v in index.items()
            if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] and v[1]}


def _denoisers(comps: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, (library, cls) in comps.items():
        if library == "diffusers" and ("Transformer" in cls or "UNet" in cls) and "Autoencoder" not in cls:
            out.append((name, cls))
    return out


def _blocks(module: Any) -> tuple[str, ...]:
    """Top-level ModuleLists of two or more modules of one class: the repeated block stacks."""
    import torch

    out = []
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ModuleList) and len(child) >= 2 and len({type(b) for b in child}) == 1:
            out.append(name)
    return tuple(out)


def _uses_cache_context(pipe: Any) -> bool:
    import inspect

    try:
        return "cache_context" in inspect.getsource(type(pipe).__call__)
    except (OSError, TypeError):
        return False


def facts(index: dict[str, Any], pipe: Any = None) -> tuple[FamilyFacts, list[str]]:
    """-> (facts, notes saying what was inferred from what)."""
    cls = str(index.get("_class_name", "?"))
    comps = _components(index)
    denoisers = _denoisers(comps)
    if not denoisers:
        raise ValueError(f"{cls}: model_index.json names no diffusers transformer or UNet component")
    names = tuple(n for n, _ in denoisers)
    kind = "unet" if any("UNet" in c for _, c in denoisers) else "dit"
    classes = " ".join([cls] + [c for _, c in comps.values()])
    modality = "video" if VIDEO.search(classes) else "image"
    task = next((t for pattern, t in TASKS if pattern.search(cls)), "t2v" if modality == "video" else "t2i")
    if modality == "image" and task in ("i2v", "v2v"):
        modality = "video"
    encoders = tuple(sorted(n for n in comps if n.startswith("text_encoder")))
    notes = [f"generic family for {cls}: denoiser {kind} ({', '.join(f'{n}={c}' for n, c in denoisers)}), "
             f"modality {modality}, task {task}, guidance assumed cfg (from model_index.json)"]
    fields: dict[str, Any] = dict(denoiser=kind, denoiser_components=names, modality=modality, tasks=(task,),
                                  guidance="cfg", text_encoders=encoders, conv_heavy=kind == "unet",
                                  vae_tiling=False, vae_slicing=False)
    if pipe is not None:
        modules = [getattr(pipe, n, None) for n in names]
        modules = [m for m in modules if m is not None]
        block_attrs = tuple(dict.fromkeys(a for m in modules for a in _blocks(m)))
        vae = getattr(pipe, "vae", None)
        fields.update(
            block_attrs=block_attrs,
            repeated_blocks=any(getattr(m, "_repeated_blocks", None) for m in modules),
            qkv_fusion=any(hasattr(m, "fuse_qkv_projections") for m in modules),
            vae_tiling=vae is not None and hasattr(vae, "enable_tiling"),
            vae_slicing=vae is not None and hasattr(vae, "enable_slicing"),
            cache_context=_uses_cache_context(pipe))
        notes.append("from the loaded modules: " + ", ".join(
            f"{k}={v}" for k, v in fields.items()
            if k in ("block_attrs", "repeated_blocks", "qkv_fusion", "vae_tiling", "vae_slicing", "cache_context")))
    return FamilyFacts(**fields), notes
