"""Declarations only: importing this module never imports torch or diffusers."""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, unsupported

# vLLM-Omni's _MODEL_COEFFICIENTS["QwenImageTransformer2DModel"] (ComfyUI-TeaCache tuning);
# probe: the image stream of block 0, img_norm1 modulated by the first half of img_mod(temb).
QWEN_TEACACHE = {
    "probe": "qwen-img-mod",
    "coefficients": (-4.5e02, 2.8e02, -4.5e01, 3.2e00, -2.0e-02),
    "source": "vLLM-Omni TeaCache config (ComfyUI-TeaCache tuning)",
}

# Verified against diffusers 0.42.1: every listed pipeline has model_cpu_offload_seq
# "text_encoder->transformer->vae" and, with a negative prompt and true_cfg_scale > 1, runs true CFG as two batch-1
# calls inside transformer.cache_context("cond") / ("uncond"); QwenImageTransformer2DModel: transformer_blocks =
# ModuleList[QwenImageTransformerBlock], _repeated_blocks = ["QwenImageTransformerBlock"], fuse_qkv_projections
# (AttentionMixin); AutoencoderKLQwenImage has enable_tiling / enable_slicing. Left out: the ControlNet pipelines
# (an extra controlnet component feeding block residuals) and QwenImageLayeredPipeline (image-to-layers, no
# height / width arguments).
# Tasks: QwenImageImg2ImgPipeline and QwenImageInpaintPipeline take the QwenImagePipeline components as they are
# (i2i / inpaint run from a text-to-image checkpoint). QwenImageEditPipeline also needs `processor`, a
# Qwen2VLProcessor that turns the input image into vision tokens for the Qwen2.5-VL encoder: a text-to-image
# checkpoint has none, so edit runs only on an edit checkpoint (Qwen/Qwen-Image-Edit), loaded as its own pipeline.
# With transformers 5.24, Qwen2VLProcessor cannot be built without torchvision (its video processor), and no
# torchvision build for the CPU torch 2.13 this repository tests with is installable (the PyPI wheel fails to
# import: "operator torchvision::nms does not exist"), so no tiny edit model is built here and no edit cell is
# proven: each cell claimed elsewhere for qwenimage is declared unsupported for edit below.
EDIT_UNPROVEN = ("not verified: QwenImageEditPipeline cannot be built from a text-to-image checkpoint (it needs a "
                 "Qwen2VLProcessor `processor`), and an edit checkpoint's processor needs torchvision, which has no "
                 "CPU build for torch 2.13 to build a tiny edit model with")
CLAIMED_ELSEWHERE = ("lora", "lora_fused", "fuse_qkv", "torchao", "layerwise_casting", "layerwise_offload",
                     "model_cpu_offload", "sequential_cpu_offload", "disk_offload", "attention_backend", "cache_dit",
                     "faster_cache", "first_block_cache", "pyramid_attention_broadcast", "taylorseer_cache",
                     "teacache", "vae_slicing", "vae_tiling")

FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks",),
    repeated_blocks=True,
    modality="image",
    tasks=("t2i", "i2i", "inpaint", "edit"),
    guidance="true-cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder",),
    cache_context=True,
    qkv_fusion=True,
)


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="qwenimage",
        summary="Qwen-Image MMDiT (Qwen2.5-VL text encoder, true CFG) and its img2img / inpaint / edit siblings",
        pipelines=("QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageInpaintPipeline",
                   "QwenImageEditPipeline", "QwenImageEditPlusPipeline", "QwenImageEditInpaintPipeline"),
        task_pipelines={"t2i": "QwenImagePipeline", "i2i": "QwenImageImg2ImgPipeline",
                        "inpaint": "QwenImageInpaintPipeline", "edit": "QwenImageEditPipeline"},
        hub_patterns=("Qwen/Qwen-Image*",),
        facts=FACTS,
        limits=Limits(size_multiple=16),
        extras={"teacache": QWEN_TEACACHE},
        claims={**{f"{name}@edit": unsupported(EDIT_UNPROVEN) for name in CLAIMED_ELSEWHERE},
                # cache-dit patches the loaded pipeline's class; a task pipeline built from the same components is
                # not patched, creates no cache context and reuses nothing
                **{f"cache_dit@{task}": unsupported(
                    "the task's pipeline is built from the loaded one's components and is not patched by cache-dit: "
                    f"no cache context, nothing reused (omni verify on tiny-qwenimage {task})")
                   for task in ("i2i", "inpaint")}},
        # Qwen-Image model card: true_cfg_scale 4.0 with negative_prompt " " (without a negative prompt the
        # pipeline skips true CFG and warns that true_cfg_scale is ignored)
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 50, "true_cfg_scale": 4.0,
                            "negative_prompt": " "},
    )


@hookimpl
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
        summary="random-weight ~58 M-parameter QwenImagePipeline, built offline; for benchmarks",
        build="omni_family_qwenimage.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "max_sequence_length": 32},
    )
