"""Declarations only (no torch import): ``omni plugins`` imports this module on every call."""

from omni.sdk import ConfigKey, OptimizationSpec, Option, Stage, hookimpl, supported


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="attention_slicing",
        stage=Stage.PLACE,
        summary="compute attention in slices (diffusers' enable_attention_slicing): lower peak memory",
        lossless=True,
        impl="omni_plugin_attention_slicing.impl:apply",
        options=(Option("slice_size", "str", "auto", "'auto' (half the heads), 'max' (one head) or a number"),),
        config_keys=(ConfigKey("enable_attention_slicing", enables=True),
                     ConfigKey("attention_slice_size", option="slice_size")),
        requires_traits={"denoiser:unet"},
        # proven by `omni verify --optimization attention_slicing` (tests/core/test_examples.py runs it)
        claims={"sd15": supported("verified: omni verify on tiny-sd15")},
        order=60,
    )
