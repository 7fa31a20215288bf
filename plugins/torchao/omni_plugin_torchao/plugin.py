"""Declarations only (no torch / torchao import). Code lives in :mod:`.impl`, imported when a run selects it.

Four optimizations, one exclusive group (only one can be active in a run):

* ``torchao``: post-load ``quantize_`` with a scheme that runs on any host (QUANTIZE stage, after
  QKV fusion, which must fuse before the weights become torchao tensors);
* ``torchao_fp8_dynamic``: float8 weights and activations (W8A8), needs CUDA compute capability >= 8.9;
* ``torchao_int4_weight_only``: int4 weights in the tinygemm tile-packed layout, needs CUDA compute
  capability >= 8.0 and bf16 (no mslk needed: torch's own ``_weight_int4pack_mm`` kernel);
* ``torchao_load``: the same CPU schemes applied by diffusers while the weights load (``TorchAoConfig``).
  On the CPU it does not lower peak RSS (safetensors are memory-mapped; benchmarks/quant.py measures it).

Config keys (see README.md for the reasoning): seed ``quantization: int8|fp8|nf4`` with
``quantization_backend: torchao`` selects the weight-only schemes; without ``quantization_backend``
(vLLM-Omni style) ``int8`` means W8A8 (``int8_dynamic``), ``fp8`` means ``torchao_fp8_dynamic`` and
``nf4`` keeps the seed meaning.
"""

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported

from omni_plugin_torchao.schemes import CPU_SCHEMES, HARDWARE_SCHEMES, SEED_VALUE_MAP, VLLM_VALUE_MAP

# Cells that passed omni's verifier (tiny model, same seed as an unoptimized run, default options plus
# verify_overrides), and where; the measured PSNRs are in docs/verified-matrix.md (CPU) and
# docs/benchmarks.md (GPU). sdxl is not claimed for torchao_fp8_dynamic: its tiny model gave non-finite
# images with per-row scales (see docs/benchmarks.md).
_BOTH = "verified: omni verify (tiny model; CPU fp32 and H100 bf16)"
_H100 = "verified: omni verify on an H100 (tiny model, bf16)"
_CPU = "verified: omni verify (tiny model, CPU fp32)"
VERIFIED = {
    "torchao": {**dict.fromkeys(("flux", "sd15", "sdxl", "sd3"), _BOTH), "wan": _CPU, "ltx": _CPU, "qwenimage": _CPU},
    "torchao_load": {**dict.fromkeys(("flux", "sd15", "sdxl", "sd3"), _BOTH), "wan": _CPU},
    "torchao_fp8_dynamic": dict.fromkeys(("flux", "sd15", "sd3"), _H100),
    "torchao_int4_weight_only": dict.fromkeys(("flux", "sd15", "sdxl", "sd3"), _H100),
}

NEEDS = Needs(packages=("torchao>=0.15",))
CONFLICTS = {
    "layerwise_casting": "layerwise casting re-casts the weights that torchao quantized; do not stack them",
    "gguf": "gguf and torchao both replace the denoiser's weights with quantized ones",
}
GROUP = "torchao"

_SCHEME_HELP = "; ".join(f"{k}: {v}" for k, v in CPU_SCHEMES.items()) + (
    ". fp8_dynamic and int4_weight_only need GPU hardware and are the separate optimizations "
    + " and ".join(HARDWARE_SCHEMES.values())
)


def _common() -> tuple[Option, ...]:
    return (
        Option("components", "str", "",
               "comma list of pipeline components to quantize; empty = the family's denoiser(s). Text encoders are "
               "opt-in: name them (text_encoder_2) or use the alias text_encoders; 'denoiser' is an alias too"),
        Option("ignored_layers", "str", "",
               "comma list of module-name substrings whose Linear layers stay unquantized (vLLM-Omni "
               "--ignored-layers), e.g. 'add_kv_proj,to_add_out'; a substring that matches nothing is reported"),
    )


def _claims(name: str):
    return {family: supported(reason) for family, reason in VERIFIED.get(name, {}).items()}


_GROUP_SIZE = Option("group_size", "int", 0,
                     "group size of intx4_weight_only (default 32) and block size of nf4 (default 64); 0 = the "
                     "scheme's default. Layers whose sizes are not multiples stay unquantized (reported)", min=0)


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="torchao",
        stage=Stage.QUANTIZE,
        summary="torchao weight quantization of the denoiser after loading (int8, fp8 weight-only, nf4, int4-in-int8)",
        lossless=False,
        tolerance_psnr=35.0,
        impl="omni_plugin_torchao.impl:quantize",
        options=(
            Option("scheme", "choice", "int8_weight_only", _SCHEME_HELP, choices=tuple(CPU_SCHEMES)),
            *_common(),
            _GROUP_SIZE,
        ),
        config_keys=(
            ConfigKey("quantization", when=tuple(SEED_VALUE_MAP), value_option="scheme", value_map=SEED_VALUE_MAP,
                      requires={"quantization_backend": ("torchao",)}),
            ConfigKey("quantization", when=tuple(VLLM_VALUE_MAP), value_option="scheme", value_map=VLLM_VALUE_MAP,
                      requires={"quantization_backend": (None,)}),
            ConfigKey("ignored_layers", option="ignored_layers"),
        ),
        exclusive_group=GROUP,
        conflicts_with=CONFLICTS,
        needs=NEEDS,
        order=50,
        claims=_claims("torchao"),
    )
    yield OptimizationSpec(
        name="torchao_fp8_dynamic",
        stage=Stage.QUANTIZE,
        summary="torchao float8 weights and dynamically quantized float8 activations (W8A8, torch._scaled_mm)",
        lossless=False,
        tolerance_psnr=30.0,
        impl="omni_plugin_torchao.impl:fp8_dynamic",
        options=(
            Option("granularity", "choice", "auto",
                   "scale granularity: row (per-row weights, per-token activations; needs bf16 weights), tensor, or "
                   "auto (row when the weights are bf16, else tensor)", choices=("auto", "row", "tensor")),
            *_common(),
        ),
        config_keys=(
            ConfigKey("quantization", when=("fp8",), requires={"quantization_backend": (None,)}),
            ConfigKey("ignored_layers", option="ignored_layers"),
        ),
        exclusive_group=GROUP,
        conflicts_with=CONFLICTS,
        needs=Needs(packages=("torchao>=0.15",), min_compute_capability=(8, 9)),
        order=50,
        claims=_claims("torchao_fp8_dynamic"),
    )
    yield OptimizationSpec(
        name="torchao_int4_weight_only",
        stage=Stage.QUANTIZE,
        summary="torchao int4 weight-only quantization in the tinygemm tile-packed layout (CUDA, bf16)",
        lossless=False,
        tolerance_psnr=28.0,
        impl="omni_plugin_torchao.impl:int4_weight_only",
        options=(
            Option("group_size", "choice", "128", "int4 group size (layers whose input size is not a multiple stay "
                   "unquantized, reported)", choices=("32", "64", "128", "256")),
            *_common(),
        ),
        exclusive_group=GROUP,
        conflicts_with=CONFLICTS,
        needs=Needs(packages=("torchao>=0.15",), min_compute_capability=(8, 0)),
        order=50,
        claims=_claims("torchao_int4_weight_only"),
        verify_overrides={"group_size": "32"},  # tiny layers: 128 would leave all but 3 of 28 unquantized
    )
    yield OptimizationSpec(
        name="torchao_load",
        stage=Stage.LOAD,
        summary="torchao quantization applied by diffusers while the weights load (TorchAoConfig with exact "
                "per-layer configs) instead of after",
        lossless=False,
        tolerance_psnr=35.0,
        impl="omni_plugin_torchao.impl:load_time",
        options=(
            Option("scheme", "choice", "int8_weight_only", _SCHEME_HELP, choices=tuple(CPU_SCHEMES)),
            Option("components", "str", "",
                   "comma list of diffusers components to quantize while loading; empty = the family's denoiser(s) "
                   "(text encoders: use torchao after loading)"),
            Option("ignored_layers", "str", "",
                   "comma list of module-name substrings whose Linear layers stay unquantized"),
            _GROUP_SIZE,
        ),
        exclusive_group=GROUP,
        conflicts_with=CONFLICTS,
        needs=NEEDS,
        order=50,
        claims=_claims("torchao_load"),
    )
