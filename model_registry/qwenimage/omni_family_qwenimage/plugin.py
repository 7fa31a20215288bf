"""Declarations only: importing this module never imports torch or diffusers."""

import omni
from omni.specs import FamilyFacts, FamilySpec, ModelSpec, TeaCacheFacts

# vLLM-Omni's _MODEL_COEFFICIENTS["QwenImageTransformer2DModel"] (ComfyUI-TeaCache tuning); probe: the
# image stream of block 0, img_norm1 modulated by the first half of img_mod(temb).
QWEN_TEACACHE = TeaCacheFacts(
    probe="qwen-img-mod",
    coefficients=(-4.5e02, 2.8e02, -4.5e01, 3.2e00, -2.0e-02),
    source="vLLM-Omni TeaCache config (ComfyUI-TeaCache tuning)",
)

FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks",),
    block_classes=("QwenImageTransformerBlock",),
    repeated_blocks=True,
    modality="image",
    tasks=("t2i", "i2i", "edit"),
    guidance="true-cfg",
    vae_class="AutoencoderKLQwenImage",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder",),
    model_cpu_offload_seq="text_encoder->transformer->vae",
    cache_context=True,
    qkv_fusion=True,
    teacache=QWEN_TEACACHE,
)


@omni.hookimpl
def omni_register_families():
    yield FamilySpec(
        name="qwenimage",
        summary="Qwen-Image MMDiT (Qwen2.5-VL text encoder, true CFG) and its img2img / edit siblings",
        pipelines=("QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageEditPipeline",
                   "QwenImageInpaintPipeline"),
        hub_patterns=("Qwen/Qwen-Image*",),
        facts=FACTS,
        load="omni.loading:load_diffusers",
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 50, "true_cfg_scale": 4.0},
    )


@omni.hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-qwenimage",
        family="qwenimage",
        summary="random-weight tiny QwenImagePipeline (tiny Qwen2.5-VL encoder), built offline; for tests",
        build="omni_family_qwenimage.tiny:build_tiny",
        size="tiny",
        default_generation={"height": 64, "width": 64, "num_inference_steps": 4, "max_sequence_length": 32},
    )
    yield ModelSpec(
        name="medium-qwenimage",
        family="qwenimage",
        summary="random-weight ~70 M-parameter QwenImagePipeline, built offline; for benchmarks",
        build="omni_family_qwenimage.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "max_sequence_length": 32},
    )
