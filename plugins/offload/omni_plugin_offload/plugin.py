"""Declarations only (no torch import). All five are mutually exclusive (exclusive_group="offload")
and manage placement themselves (places_pipeline=True). The four accelerator offloads are
`unavailable` on CPU-only hosts (diffusers raises "requires accelerator" or does nothing there);
disk offload is the one that works on CPU and lowers resident RAM."""

import omni
from omni.specs import ConfigKey, Needs, OptimizationSpec, Option, Stage, supported

ACCEL = Needs(accelerator=True)
GPU_VERIFIED = "verified on an H100: output matches the unoffloaded run (tests marked gpu)"
DISK_VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")


_TORCHAO = "diffusers refuses disk offload of torchao tensors (safetensors cannot serialize them)"
DISK_CONFLICTS = {n: _TORCHAO for n in ("torchao", "torchao_load", "torchao_fp8_dynamic", "torchao_int4_weight_only")}


def _spec(name, summary, impl, *, keys=(), options=(), needs=ACCEL, order=10, claims=None, conflicts=None):
    return OptimizationSpec(name=name, stage=Stage.PLACE, summary=summary, lossless=True, impl=impl,
                            config_keys=keys, options=options, needs=needs, exclusive_group="offload",
                            places_pipeline=True, order=order, claims=claims or {}, conflicts_with=conflicts or {})


@omni.hookimpl
def omni_register_optimizations():
    yield _spec("model_cpu_offload", "keep components on the CPU and move each to the accelerator only while it runs "
                "(pipeline model_cpu_offload_seq)", "omni_plugin_offload.impl:model_cpu_offload",
                keys=(ConfigKey("enable_model_cpu_offload", enables=True), ConfigKey("enable_cpu_offload", enables=True)))
    yield _spec("sequential_cpu_offload", "stream every layer's weights to the accelerator as it runs "
                "(largest saving, slowest)", "omni_plugin_offload.impl:sequential_cpu_offload",
                keys=(ConfigKey("enable_sequential_cpu_offload", enables=True),))
    yield _spec("group_offload", "offload groups of blocks (block_level) or single layers (leaf_level) to the CPU, "
                "optionally prefetching on a CUDA stream", "omni_plugin_offload.impl:group_offload",
                keys=(ConfigKey("enable_group_offload", enables=True),
                      ConfigKey("group_offload_type", option="offload_type"),
                      ConfigKey("group_offload_use_stream", option="use_stream")),
                options=(Option("offload_type", "choice", "block_level", "granularity",
                                choices=("block_level", "leaf_level")),
                         Option("blocks_per_group", "int", 1, "blocks per group (block_level)", min=1),
                         Option("use_stream", "bool", False, "prefetch the next group on a CUDA stream")))
    yield _spec("layerwise_offload", "keep one transformer block of the denoiser on the accelerator at a time and "
                "prefetch the next on a CUDA stream (vLLM-Omni's layerwise offload); other components stay resident",
                "omni_plugin_offload.impl:layerwise_offload",
                keys=(ConfigKey("enable_layerwise_offload", enables=True),))
    yield _spec("disk_offload", "write the denoiser's weights to safetensors files and load each block group only "
                "while it runs (diffusers group offload to disk): lowers resident RAM, works on CPU",
                "omni_plugin_offload.impl:disk_offload",
                keys=(ConfigKey("group_offload_disk_path", present=True, option="path"),),
                options=(Option("path", "path", None, "folder for the offloaded weights (default: a temporary "
                                "folder removed at exit)"),
                         Option("blocks_per_group", "int", 1, "blocks per group", min=1)),
                needs=Needs(), order=20, conflicts=DISK_CONFLICTS,
                claims={f: supported("verified: omni verify (bit-exact, CPU)") for f in DISK_VERIFIED})
