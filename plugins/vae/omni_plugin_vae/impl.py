"""Delegates to the VAE's own ``enable_slicing`` / ``enable_tiling`` (the pipeline-level wrappers
were removed in diffusers 0.42)."""

from __future__ import annotations

import inspect

from omni.runtime.context import Applied, Skip


def _vae(ctx):
    vae = getattr(ctx.pipe, "vae", None)
    if vae is None:
        raise Skip("the pipeline has no vae component")
    return vae


def slicing(ctx, step) -> Applied:
    vae = _vae(ctx)
    if not hasattr(vae, "enable_slicing"):
        raise Skip(f"{type(vae).__name__} has no enable_slicing")
    vae.enable_slicing()
    return Applied(details={"vae": type(vae).__name__}, undo=vae.disable_slicing)


def tiling(ctx, step) -> Applied:
    vae = _vae(ctx)
    if not hasattr(vae, "enable_tiling"):
        raise Skip(f"{type(vae).__name__} has no enable_tiling")
    size = int(step.options.get("tile_size") or 0)
    params = inspect.signature(vae.enable_tiling).parameters
    details = {"vae": type(vae).__name__}
    if size and "tile_sample_min_height" in params:  # Wan / LTX / Qwen-style VAEs take sizes
        kwargs = {"tile_sample_min_height": size, "tile_sample_min_width": size}
        if "tile_sample_stride_height" in params:  # overlap a quarter of the tile
            stride = max(8, size * 3 // 4)
            kwargs.update(tile_sample_stride_height=stride, tile_sample_stride_width=stride)
            details["tile_stride"] = stride
        vae.enable_tiling(**kwargs)
        details["tile_size"] = size
    else:
        if size and not hasattr(vae, "tile_sample_min_size"):
            raise Skip(f"{type(vae).__name__} does not expose a tile size")
        if size and size < 32:  # measured: tile 16 makes AutoencoderKL return 92x92 for a 64x64 latent image
            raise Skip(f"tile_size {size} is too small for {type(vae).__name__} (its tiled decode returns a "
                       "wrong output size below 32 px)")
        vae.enable_tiling()
        if size:
            scale = 2 ** (len(vae.config.block_out_channels) - 1)
            vae.tile_sample_min_size = size
            vae.tile_latent_min_size = max(1, size // scale)
            details["tile_size"] = size
    if hasattr(vae, "tile_sample_min_size"):
        details.setdefault("tile_size", int(vae.tile_sample_min_size))
    return Applied(details=details, undo=vae.disable_tiling)
