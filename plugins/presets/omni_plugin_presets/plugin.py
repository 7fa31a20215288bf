"""The presets of OmniRT's legacy optimization guide, in omni's config keys, and ``lossless``. No torch
import. A preset never conflicts with itself (tests/plugins/test_plugin_presets.py plans every preset on
every installed family)."""

from omni.sdk import PresetSpec, hookimpl


@hookimpl
def omni_register_presets():
    yield PresetSpec(
        name="vram-first",
        description="fit in less accelerator memory first: model CPU offload + VAE slicing + VAE tiling",
        config={"enable_model_cpu_offload": True, "enable_vae_slicing": True, "enable_vae_tiling": True})
    yield PresetSpec(
        name="throughput-first",
        description="layout tweaks for speed: channels_last + fused QKV projections",
        config={"channels_last": True, "fuse_qkv": True})
    yield PresetSpec(
        name="experimental-memory",
        description="torchao int8 weight-only quantization + VAE tiling (lossy: check quality yourself)",
        config={"quantization": "int8", "quantization_backend": "torchao", "enable_vae_tiling": True})
    yield PresetSpec(
        name="lossless",
        description="every lossless optimization supported and available for the model here, except those that "
                    "cost time: offloads (trade speed for memory) and compile (a one-off compilation per process)",
        expand="omni_plugin_presets.lossless:expand")
