"""Declarations only: importing this module never imports torch or diffusers.

PixArtAlphaPipeline (diffusers 0.42) calls its transformer without ``cache_context`` and has only the
legacy ``callback``/``callback_steps`` API; omni's step observer still gives it step timings and cache
hits. Its transformer keeps one ``transformer_blocks`` list of ``BasicTransformerBlock`` (in diffusers'
block registry), and runs classifier-free guidance as one batch of two.
"""

from omni.sdk import FamilyFacts, FamilySpec, Limits, ModelSpec, hookimpl, supported

FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks",),
    modality="image",
    tasks=("t2i",),
    guidance="cfg",
    text_encoders=("text_encoder",),
)


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="pixart",
        summary="PixArt-alpha text-to-image DiT (T5 text encoder), an example third-party family",
        pipelines=("PixArtAlphaPipeline",),
        hub_patterns=("PixArt-alpha/PixArt-XL-2-*",),
        facts=FACTS,
        limits=Limits(size_multiple=16),  # VAE factor 8 x patch size 2
        # proven by `omni verify --family pixart` on tiny-pixart (tests/core/test_examples.py runs it)
        claims={name: supported("verified: omni verify on tiny-pixart")
                for name in ("first_block_cache", "taylorseer_cache", "pyramid_attention_broadcast")},
        default_generation={"height": 512, "width": 512, "num_inference_steps": 20, "guidance_scale": 4.5},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-pixart",
        family="pixart",
        summary="random-weight tiny PixArtAlphaPipeline, built offline",
        build="omni_family_pixart.tiny:build_tiny",
        size="tiny",
        weights="random",
        default_generation={"height": 64, "width": 64, "num_inference_steps": 8, "guidance_scale": 4.5,
                            "use_resolution_binning": False, "clean_caption": False, "max_sequence_length": 16},
    )
