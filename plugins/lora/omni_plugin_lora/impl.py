"""Applying LoRA adapters with diffusers' loaders (``load_lora_weights``, ``set_adapters``,
``fuse_lora``, ``enable_lora_hotswap``), after every adapter file was checked (:mod:`.library`).

* ``lora`` keeps the adapters as separate layers, so a request can choose them (:mod:`.switch`);
  undo unloads them (``unload_lora_weights``) and puts the attributes diffusers/peft set back.
* ``lora_fused`` merges them into the weights (``fuse_lora`` then ``unload_lora_weights``: no LoRA
  layer is left, so the denoiser runs at the base model's speed and a quantizer after it sees plain
  weights). Merged weights cannot be restored exactly (W + BA - BA is not W in floating point), so once
  fused the step has no undo; until then a failure unloads what was loaded.
"""

from __future__ import annotations

from typing import Any

from omni.sdk import Applied, RunContext, Step, UsageError, denoisers, keep_attributes

from omni_plugin_lora.library import Adapter, Library, check_adapter, loader
from omni_plugin_lora.switch import Hotswap, Resident

# what diffusers and peft set on the pipeline and its LoRA components while loading/fusing
_ATTRS = ("peft_config", "_hf_peft_config_loaded", "_prepare_lora_hotswap_kwargs", "num_fused_loras",
          "_merged_adapters", "_transformer_norm_layers", "_lora_scale")


def _adapters(ctx: RunContext, step: Step, library: Library) -> tuple[list[Adapter], list[tuple[str, float]]]:
    where = f"{step.name}.paths"
    adapters: list[Adapter] = []
    scales: list[tuple[str, float]] = []
    for text in step.options.get("paths") or ():
        name, path, scale = library.entry(text, where)
        if any(a.name == name for a in adapters):
            raise UsageError(f"{where}: two adapters are named {name}; name one: NAME=FILE[:SCALE]")
        adapters.append(check_adapter(ctx.pipe, ctx.family.name, name, path, where))
        scales.append((name, scale))
    return adapters, scales


def _remember(ctx: RunContext, step: Step, components: tuple[str, ...]) -> None:
    """Undo: unload every LoRA layer, then put back the attributes loading set."""
    for obj in [ctx.pipe] + [getattr(ctx.pipe, c) for c in components if getattr(ctx.pipe, c, None) is not None]:
        keep_attributes(step, obj, _ATTRS)
    step.on_undo(ctx.pipe.unload_lora_weights)


def _describe(adapters: list[Adapter]) -> dict[str, Any]:
    return {a.name: {"file": a.path, "rank": a.rank, "layers": len(a.modules), "components": list(a.components)}
            for a in adapters}


def _eligible(ctx: RunContext, library: Library, known: list[Adapter]) -> list[Adapter]:
    """The library's and the shipped adapters that fit this pipeline (the others fail when a request
    names them, with the reason)."""
    names = {a.name for a in known}
    out = []
    for name, path in library.names().items():
        if name not in names:
            try:
                out.append(check_adapter(ctx.pipe, ctx.family.name, name, path, "lora.library"))
            except UsageError:
                continue
    return out


def unfused(ctx: RunContext, step: Step) -> Applied:
    components = loader(ctx.pipe)
    modules = [m for _, m in denoisers(ctx)]
    library = Library(step.options.get("library") or "")
    adapters, scales = _adapters(ctx, step, library)
    if not adapters and not library.folder:
        raise UsageError("lora needs an adapter: --set lora=FILE[:SCALE] (or lora.library=FOLDER for adapters "
                         "that requests name)")
    compiled = sorted(n for n, stage in ctx.planned.items() if stage == "compile")
    args = (ctx.pipe, ctx.family.name, library, adapters, scales)
    if compiled:
        if not adapters:
            raise UsageError(f"lora under {', '.join(compiled)} hot-swaps into slots shaped by lora.paths: name at "
                             "least one adapter there")
        extra = _eligible(ctx, library, adapters)
        switcher: Any = Hotswap(*args, denoisers=modules, target_rank=max(a.rank for a in adapters + extra))
        switcher.known.update({a.name: a for a in extra})
    else:
        max_loaded = int(step.options["max_loaded"])
        if len(adapters) > max_loaded:
            raise UsageError(f"lora.paths names {len(adapters)} adapters, more than lora.max_loaded={max_loaded}")
        switcher = Resident(*args, max_loaded=max_loaded)
    _remember(ctx, step, components)
    switcher.start(adapters)
    details = {"adapters": _describe(adapters), "library": library.folder or None, "hotswap_for": compiled or None}

    def reconfigure(options: dict[str, Any]) -> None:
        switcher.reconfigure(options)
        details.update(switcher.details())

    details.update(switcher.details())
    return Applied(details=details, reconfigure=reconfigure)


def fused(ctx: RunContext, step: Step) -> Applied:
    components = loader(ctx.pipe)
    adapters, scales = _adapters(ctx, step, Library())
    if not adapters:
        raise UsageError("lora_fused needs an adapter: --set lora_fused=FILE[:SCALE]")
    _remember(ctx, step, components)
    for adapter in adapters:
        ctx.pipe.load_lora_weights(adapter.path, adapter_name=adapter.name)
    ctx.pipe.set_adapters([n for n, _ in scales], adapter_weights=[s for _, s in scales])
    fuse = sorted({c for a in adapters for c in a.components})
    ctx.pipe.fuse_lora(components=fuse, lora_scale=1.0, adapter_names=[a.name for a in adapters])
    ctx.pipe.unload_lora_weights()
    step.undo_actions.clear()  # the weights now hold the adapters: nothing left that an undo could restore exactly
    return Applied(details={"adapters": _describe(adapters), "scales": dict(scales), "fused_into": fuse,
                            "note": "merged into the weights; reload the model to remove"})

