"""Declarations only (no torch / diffusers / peft import).

Two optimizations, one exclusive group (a run loads adapters one way):

* ``lora``: adapters stay separate layers (peft), chosen per request (``lora.adapters``); under a
  planned compile they are hot-swapped into fixed slots (no recompilation);
* ``lora_fused``: adapters merged into the weights once (the base model's speed; quantizers and
  layerwise casting after it see plain weights).

Both run first in the quantize stage (order 5): before QKV fusion, torchao and layerwise casting
rewrite the layers an adapter targets. The interactions with those are declared here and tested in
``tests/plugins/test_plugin_lora_interactions.py``.

``omni verify`` checks a cell with a random adapter made for the family's tiny model
(:mod:`.verify`) at scale 0: the run must apply and reproduce the base output exactly (a LoRA at scale
0 adds exact zeros). What an adapter *does* is measured on the shapes model with the shipped
``shapes-teal`` adapter (docs/benchmarks.md).
"""

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported

VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")
_CLAIM = "verified: omni verify (random rank-4 adapter on the tiny model, scale 0 reproduces the base output)"
NEEDS = Needs(packages=("peft>=0.17",))
GROUP = "lora"
_QUANT = ("an unfused adapter keeps its own Linear layers, which {q} would quantize too, and hot-swapping copies "
          "into them; merge the adapter first with lora_fused (it runs before quantization)")
UNFUSED_CONFLICTS = {
    **{q: _QUANT.format(q=q) for q in ("torchao", "torchao_fp8_dynamic", "torchao_int4_weight_only")},
    "torchao_load": "torchao_load quantizes the weights while loading, before an adapter can wrap them",
    "gguf": "GGUF layers are quantized when loaded; omni does not put unfused adapters on them (untested)",
    "layerwise_casting": "layerwise casting would store the adapter's own lora_A/lora_B weights in fp8 too; merge "
                         "the adapter first with lora_fused",
    "fuse_qkv": "fusing Q/K/V replaces to_q/to_k/to_v, which the adapter wraps, with one to_qkv that the pipeline "
                "then calls: the adapter's attention layers would be bypassed; use lora_fused",
}
FUSED_CONFLICTS = {
    "torchao_load": "torchao_load quantizes the weights while loading: an adapter cannot be merged into them",
    "gguf": "GGUF weights are quantized when loaded: an adapter cannot be merged into them",
}
_PATHS = Option("paths", "strs", (), "adapters loaded with the model, each [NAME=]FILE[:SCALE]: a .safetensors file "
                "(diffusers, peft or kohya keys that diffusers' loader accepts) or an adapter name from lora.library "
                "or shipped with omni-plugin-lora (shapes-teal); NAME defaults to the file name, SCALE to 1.0")


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="lora",
        stage=Stage.QUANTIZE,
        summary="LoRA adapters as separate layers, chosen per request (an LRU of loaded adapters; hot-swapped "
                "into fixed slots without recompiling when compile is planned)",
        lossless=False,
        tolerance_psnr=80.0,
        impl="omni_plugin_lora.impl:unfused",
        options=(
            _PATHS,
            Option("adapters", "str", "", "the active adapters of a request, name:scale,name2:scale (names from "
                   "lora.paths, lora.library or the shipped ones); none = no adapter; empty = lora.paths at their "
                   "scales", per_request=True),
            Option("library", "path", "", "a folder of .safetensors adapters that requests may name (by file "
                   "name), loaded on first use"),
            Option("max_loaded", "int", 4, "how many adapters stay loaded (the least recently used is unloaded "
                   "first); under compile the slots are the adapters in lora.paths", min=1, max=64),
        ),
        config_keys=(ConfigKey("lora", present=True, option="paths"),),
        exclusive_group=GROUP,
        conflicts_with=UNFUSED_CONFLICTS,
        needs=NEEDS,
        order=5,
        claims={f: supported(_CLAIM) for f in VERIFIED},
        verify_prepare="omni_plugin_lora.verify:prepare",
    )
    yield OptimizationSpec(
        name="lora_fused",
        stage=Stage.QUANTIZE,
        summary="LoRA adapters merged into the weights once (fuse_lora): the base model's speed, no per-request "
                "choice; quantizers after it see plain weights; cannot be undone",
        lossless=False,
        tolerance_psnr=80.0,
        impl="omni_plugin_lora.impl:fused",
        options=(_PATHS,),
        config_keys=(ConfigKey("lora_fused", present=True, option="paths"),),
        exclusive_group=GROUP,
        conflicts_with=FUSED_CONFLICTS,
        needs=NEEDS,
        order=5,
        claims={f: supported(_CLAIM) for f in VERIFIED},
        verify_prepare="omni_plugin_lora.verify:prepare",
    )
