"""Delegates to the VAE's own ``enable_slicing`` / ``enable_tiling`` (the pipeline-level wrappers
were removed in diffusers 0.42). Undo puts back every VAE attribute the step changed."""

from __future__ import annotations

import inspect
from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, keep_attributes


def _vae(ctx: RunContext, method: str) -> Any:
    vae = getattr(ctx.pipe, "vae", None)
    if vae is None:
        raise Skip("the pipeline has no vae component")
    if not hasattr(vae, method):
        raise Skip(f"{type(vae).__name__} has no {method}")
    return vae


def slicing(ctx: RunContext, step: Step) -> Applied:
    vae = _vae(ctx, "enable_slicing")
    keep_attributes(step, vae, ("use_slicing",))
    vae.enable_slicing()
    return Applied(details={"vae": type(vae).__name__})


def tiling(ctx: RunContext, step: Step) -> Applied:
    vae = _vae(ctx, "enable_tiling")
    size = int(step.options.get("tile_size") or 0)
    params = inspect.signature(vae.enable_tiling).parameters
    sized = "tile_sample_min_height" in params  # Wan / LTX / Qwen-style VAEs take sizes
    if size and not sized:
        if not hasattr(vae, "tile_sample_min_size"):
            raise Skip(f"{type(vae).__name__} does not expose a tile size")
        if size < 32:  # AutoencoderKL's tiled decode of a 64x64 latent image at tile 16 returns 92x92
            raise Skip(f"tile_size {size} is too small for {type(vae).__name__} (its tiled decode returns a "
                       "wrong output size below 32 px)")
    keep_attributes(step, vae, ("use_tiling", "tile_"))
    details: dict[str, Any] = {"vae": type(vae).__name__}
    if size and sized:
        kwargs = {"tile_sample_min_height": size, "tile_sample_min_width": size}
        if "tile_sample_stride_height" in params:  # overlap a quarter of the tile
            stride = max(8, size * 3 // 4)
            kwargs.update(tile_sample_stride_height=stride, tile_sample_stride_width=stride)
            details["tile_stride"] = stride
        vae.enable_tiling(**kwargs)
        details["tile_size"] = size
    else:
        vae.enable_tiling()
        if size:
            scale = 2 ** (len(vae.config.block_out_channels) - 1)
            vae.tile_sample_min_size = size
            vae.tile_latent_min_size = max(1, size // scale)
            details["tile_size"] = size
    if hasattr(vae, "tile_sample_min_size"):
        details.setdefault("tile_size", int(vae.tile_sample_min_size))
    return Applied(details=details)
