"""Declarations only (no torch import). All five are mutually exclusive (exclusive_group="offload")
and manage placement themselves (places_pipeline=True), stage PLACE, lossless, and undoable.

* The four accelerator offloads need a CUDA device (``Needs(accelerator=True)``): on a CPU-only host
  their cells are ``unavailable``. diffusers raises there (``enable_model_cpu_offload requires
  accelerator, but not found``; sequential offload with ``device="cpu"`` crashes at the first forward;
  ``use_stream`` raises on CPU), and with ``device="cpu"`` model/group offload run but save nothing.
* ``disk_offload`` (group offload whose offloaded copy is a safetensors file per block group) is the one
  that works on the CPU: it lowers resident RAM by the denoiser's weights (tests measure it).

Claims = cells that passed omni's verifier (tiny model, same seed as an unoptimized run, bit-exact):
disk_offload on the CPU (docs/verified-matrix.md), the accelerator offloads on a GPU
(docs/benchmarks.md, "Verified on an H100"); unsupported claims quote diffusers' failure.
"""

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported, unsupported

ACCEL = Needs(accelerator=True)
_ALL = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")
DISK_VERIFIED = _ALL
_GPU = "verified: omni verify on a GPU (tiny model, bf16, bit-exact)"
ACCEL_VERIFIED: dict[str, dict[str, str]] = {
    "model_cpu_offload": dict.fromkeys(_ALL, _GPU),
    "sequential_cpu_offload": dict.fromkeys(_ALL, _GPU),
    "group_offload": dict.fromkeys(("flux", "sd15", "sdxl", "sd3", "wan"), _GPU + "; also with use_stream"),
    "layerwise_offload": dict.fromkeys(_ALL, _GPU),
}
GROUP_OFFLOAD_FAILS = ("pipe.enable_group_offload fails at generation: RuntimeError: Input type "
                       "(CUDABFloat16Type) and weight type (CPUBFloat16Type) should be the same (a convolution "
                       "runs on weights still on the CPU; layerwise_offload, which leaves the VAE resident, works)")

_TORCHAO = "diffusers refuses disk offload of torchao tensors (safetensors cannot serialize them)"
DISK_CONFLICTS = {
    **{n: _TORCHAO for n in ("torchao", "torchao_load", "torchao_fp8_dynamic", "torchao_int4_weight_only")},
    "channels_last": "safetensors refuses channels_last weights (ValueError: You are trying to save a non "
                     "contiguous tensor)",
}


def _spec(name, summary, impl, *, keys=(), options=(), needs=ACCEL, order=10, claims=None, conflicts=None):
    return OptimizationSpec(name=name, stage=Stage.PLACE, summary=summary, lossless=True, impl=impl,
                            config_keys=keys, options=options, needs=needs, exclusive_group="offload",
                            places_pipeline=True, order=order, claims=claims or {}, conflicts_with=conflicts or {})


def _claims(name, fails=()):
    claims = {family: supported(reason) for family, reason in ACCEL_VERIFIED.get(name, {}).items()}
    return {**claims, **{family: unsupported(reason) for family, reason in fails}}


@hookimpl
def omni_register_optimizations():
    yield _spec("model_cpu_offload", "keep components on the CPU and move each to the accelerator only while it runs "
                "(pipeline model_cpu_offload_seq)", "omni_plugin_offload.impl:model_cpu_offload",
                keys=(ConfigKey("enable_model_cpu_offload", enables=True),
                      ConfigKey("enable_cpu_offload", enables=True)),
                claims=_claims("model_cpu_offload"))
    yield _spec("sequential_cpu_offload", "stream every layer's weights to the accelerator as it runs "
                "(largest saving, slowest)", "omni_plugin_offload.impl:sequential_cpu_offload",
                keys=(ConfigKey("enable_sequential_cpu_offload", enables=True),),
                claims=_claims("sequential_cpu_offload"))
    yield _spec("group_offload", "offload groups of blocks (block_level) or single layers (leaf_level) to the CPU, "
                "optionally prefetching on a CUDA stream", "omni_plugin_offload.impl:group_offload",
                keys=(ConfigKey("enable_group_offload", enables=True),
                      ConfigKey("group_offload_type", option="offload_type"),
                      ConfigKey("group_offload_use_stream", option="use_stream")),
                options=(Option("offload_type", "choice", "block_level", "granularity",
                                choices=("block_level", "leaf_level")),
                         Option("blocks_per_group", "int", 1, "blocks per group (block_level; 1 when use_stream)",
                                min=1),
                         Option("use_stream", "bool", False, "prefetch the next group on a CUDA stream")),
                claims=_claims("group_offload", [(f, GROUP_OFFLOAD_FAILS) for f in ("ltx", "qwenimage")]))
    yield _spec("layerwise_offload", "keep one transformer block of the denoiser on the accelerator at a time and "
                "prefetch the next on a CUDA stream (vLLM-Omni's layerwise offload); other components stay resident",
                "omni_plugin_offload.impl:layerwise_offload",
                keys=(ConfigKey("enable_layerwise_offload", enables=True),),
                claims=_claims("layerwise_offload"))
    yield _spec("disk_offload", "write the denoiser's weights to safetensors files and load each block group only "
                "while it runs (diffusers group offload to disk): lowers resident RAM, works on CPU",
                "omni_plugin_offload.impl:disk_offload",
                keys=(ConfigKey("group_offload_disk_path", present=True, option="path"),),
                options=(Option("path", "path", None, "folder under which a fresh per-run folder holds the "
                                "offloaded weights (default: the system temp folder); removed at undo or exit"),
                         Option("blocks_per_group", "int", 1, "blocks per group", min=1)),
                needs=Needs(), order=20, conflicts=DISK_CONFLICTS,
                claims={f: supported("verified: omni verify (bit-exact, CPU)") for f in DISK_VERIFIED})
