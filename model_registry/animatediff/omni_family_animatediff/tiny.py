"""Tiny / medium random-weight AnimateDiff pipelines built offline, the way AnimateDiff is used: an image
model's components (here the sd15 / sdxl families' own tiny or medium pipelines, random weights) plus a
``MotionAdapter`` whose block channels match that UNet. The pipeline's constructor turns the
``UNet2DConditionModel`` into a ``UNetMotionModel`` (``UNetMotionModel.from_unet2d``), which is what gets saved.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from omni.sdk import component_class, model_folder, resolve, tiny

SEED = 0
VERSION = 1

# family -> (pipeline class, base named model per size)
BASES = {
    "animatediff": ("AnimateDiffPipeline", {"tiny": "tiny-sd15", "medium": "medium-sd15"}),
    "animatediff_sdxl": ("AnimateDiffSDXLPipeline", {"tiny": "tiny-sdxl", "medium": "medium-sdxl"}),
}


def make_pipeline(base_folder: str, pipeline_class: str, size: str, seed: int = SEED):
    from diffusers import DiffusionPipeline, MotionAdapter

    base = DiffusionPipeline.from_pretrained(base_folder, local_files_only=True)
    unet = base.unet.config
    tiny.seeded(seed)
    adapter = MotionAdapter(
        block_out_channels=tuple(unet.block_out_channels), motion_layers_per_block=unet.layers_per_block,
        motion_num_attention_heads=2 if size == "tiny" else 8, motion_norm_num_groups=unet.norm_num_groups,
        motion_max_seq_length=32)
    cls = component_class(pipeline_class)
    accepted = inspect.signature(cls.__init__).parameters
    pipe = cls(**{k: v for k, v in base.components.items() if k in accepted}, motion_adapter=adapter)
    for module in (pipe.unet, adapter):
        module.eval()
    return pipe


def build(family: str, size: str) -> Path:
    pipeline_class, bases = BASES[family]
    base_folder = model_folder(resolve(bases[size]))
    key = {"base": Path(base_folder).name, "size": size, "seed": SEED, "v": VERSION}
    return tiny.cached_build(f"{size}-{family.replace('_', '-')}", key,
                             lambda: make_pipeline(base_folder, pipeline_class, size))


def build_tiny() -> Path:
    return build("animatediff", "tiny")


def build_medium() -> Path:
    return build("animatediff", "medium")


def build_tiny_sdxl() -> Path:
    return build("animatediff_sdxl", "tiny")


def build_medium_sdxl() -> Path:
    return build("animatediff_sdxl", "medium")
