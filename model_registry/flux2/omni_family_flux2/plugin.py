"""Declarations only: importing this module never imports torch or diffusers.

Two families, one distribution: FLUX.2 [dev] (``flux2``) and FLUX.2 [klein] (``flux2_klein``) share the
denoiser (``Flux2Transformer2DModel``), the VAE (``AutoencoderKLFlux2``), the tiny-model builder and the
optimization outcomes, but not what a family declares once for all its pipelines: the text encoder
(Mistral3ForConditionalGeneration vs Qwen3ForCausalLM, so ``from_pipe`` between them would be wrong), the guidance
(embedded vs CFG as two calls), ``cache_context``, the tasks (only [klein] has an inpainting pipeline) and
``task_pipelines`` (one class per task).

Facts checked against diffusers 0.42.1 (``pipelines/flux2/``, ``models/transformers/transformer_flux2.py``,
``models/autoencoders/autoencoder_kl_flux2.py``):

* Flux2Pipeline embeds guidance (``guidance_embeds=True``; ``guidance_scale`` is an input of the transformer) and
  calls the transformer once per step, without ``cache_context``. Flux2KleinPipeline and Flux2KleinInpaintPipeline
  skip guidance for step-distilled checkpoints (``is_distilled=True``) and otherwise run CFG (negative prompt "")
  as two batch-1 calls inside ``transformer.cache_context("cond")`` / ``("uncond")``.
* Flux2Pipeline and Flux2KleinPipeline take reference images (``image=``): editing is the same class.
* Every listed pipeline has ``model_cpu_offload_seq = "text_encoder->transformer->vae"``.
* Flux2Transformer2DModel: ``transformer_blocks`` = ModuleList[Flux2TransformerBlock],
  ``single_transformer_blocks`` = ModuleList[Flux2SingleTransformerBlock], ``_repeated_blocks`` = both classes,
  CacheMixin and AttentionMixin (``fuse_qkv_projections`` fuses the double blocks' Flux2Attention; the single
  blocks' Flux2ParallelSelfAttention is fused already, ``_supports_qkv_fusion = False``).
* AutoencoderKLFlux2 (AutoencoderMixin): ``enable_tiling`` / ``enable_slicing``; 8x downsampling, and the pipelines
  pack 2x2 latent patches: sizes are multiples of 16 (``check_inputs`` only warns, and the latents are rounded).
* Left out: Flux2KleinKVPipeline (a reference-image KV cache through the transformer's ``kv_cache_mode``).

TeaCache: no coefficients are published for FLUX.2 (TeaCache4FLUX's are for FLUX.1's transformer)."""

from dataclasses import replace

from omni.sdk import (
    FamilyFacts,
    FamilySpec,
    Limits,
    ModelSpec,
    hookimpl,
    supported,
    unsupported,
)

DEV_FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks", "single_transformer_blocks"),
    repeated_blocks=True,
    modality="image",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder",),
    qkv_fusion=True,
    tasks=("t2i", "edit"),
    guidance="distilled",
    cache_context=False,
)
KLEIN_FACTS = replace(DEV_FACTS, tasks=("t2i", "edit", "inpaint"), guidance="cfg", cache_context=True)
LIMITS = Limits(size_multiple=16)

# Claims: every cell `omni verify --family flux2 / flux2_klein --include-untested` passed on tiny-flux2 /
# tiny-flux2-klein for the base pipeline and every task (edit; [klein] also inpaint). Not claimed although they
# pass: compile (minutes of cold inductor compilation per cell on CPU). Not claimed, untested: cache_dit (applies,
# but at omni verify's residual_diff_threshold 0.5 the tiny models' random residuals never fall below the threshold:
# nothing reused; at 5.0 it reuses 12 of 20 calls), mag_cache (no published FLUX.2 magnitude ratios).
_PROVEN = ("gguf", "torchao_load", "torchao", "layerwise_casting", "disk_offload", "fuse_qkv",
           "pyramid_attention_broadcast", "taylorseer_cache", "vae_slicing", "vae_tiling")
_FBC = unsupported(
    "apply_first_block_cache on Flux2Transformer2DModel fails at the first step with 'TypeError: unsupported "
    "operand type(s) for -: 'Tensor' and 'list'' (diffusers hooks/first_block_cache.py:179, output - "
    "shared_state.head_block_output; reproduced on tiny-flux2 and tiny-flux2-klein)")
DEV_CLAIMS = {**{name: supported("verified: omni verify") for name in _PROVEN + ("faster_cache",)},
              "first_block_cache": _FBC}
KLEIN_CLAIMS = {
    **{name: supported("verified: omni verify") for name in _PROVEN},
    "first_block_cache": _FBC,
    "faster_cache": unsupported(
        "[klein] runs CFG as two batch-1 calls; FasterCache's unconditional-batch split fails with 'IndexError: "
        "tuple index out of range' (diffusers hooks/faster_cache.py:470, out.chunk(2, dim=0)[1]; reproduced on "
        "tiny-flux2-klein)"),
}

# the tiny text encoders have three layers (the real ones stack layers (10, 20, 30) / (9, 18, 27))
TINY_GENERATION = {"height": 64, "width": 64, "num_inference_steps": 4, "guidance_scale": 4.0,
                   "max_sequence_length": 32, "text_encoder_out_layers": (1, 2, 3)}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="flux2",
        summary="FLUX.2 [dev] rectified-flow DiT by Black Forest Labs (Mistral3 text encoder, guidance-distilled, "
                "reference-image editing)",
        pipelines=("Flux2Pipeline",),
        hub_patterns=("black-forest-labs/FLUX.2-dev*",),
        facts=DEV_FACTS,
        claims=DEV_CLAIMS,
        task_pipelines={"t2i": "Flux2Pipeline", "edit": "Flux2Pipeline"},
        limits=LIMITS,
        # Flux2Pipeline.__call__ defaults
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 50, "guidance_scale": 4.0},
    )
    yield FamilySpec(
        name="flux2_klein",
        summary="FLUX.2 [klein] rectified-flow DiT by Black Forest Labs (Qwen3 text encoder; CFG unless "
                "step-distilled), reference-image editing and inpainting",
        pipelines=("Flux2KleinPipeline", "Flux2KleinInpaintPipeline"),
        hub_patterns=("black-forest-labs/FLUX.2-klein-*",),
        facts=KLEIN_FACTS,
        claims=KLEIN_CLAIMS,
        task_pipelines={"t2i": "Flux2KleinPipeline", "edit": "Flux2KleinPipeline",
                        "inpaint": "Flux2KleinInpaintPipeline"},
        limits=LIMITS,
        # Flux2KleinPipeline.__call__ defaults (the [klein] base checkpoints; the step-distilled ones run 4 steps)
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 50, "guidance_scale": 4.0},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-flux2",
        family="flux2",
        summary="random-weight tiny Flux2Pipeline (3-layer Mistral3 text encoder, ~0.06 M transformer), built "
                "offline; for tests",
        build="omni_family_flux2.tiny:build_tiny",
        size="tiny",
        default_generation=TINY_GENERATION,
    )
    yield ModelSpec(
        name="medium-flux2",
        family="flux2",
        summary="random-weight ~60 M-parameter Flux2Pipeline, built offline; for benchmarks",
        build="omni_family_flux2.tiny:build_medium",
        size="medium",
        default_generation={**TINY_GENERATION, "height": 256, "width": 256, "num_inference_steps": 20},
    )
    yield ModelSpec(
        name="tiny-flux2-klein",
        family="flux2_klein",
        summary="random-weight tiny Flux2KleinPipeline (3-layer Qwen3 text encoder, CFG as two calls), built "
                "offline; for tests",
        build="omni_family_flux2.tiny:build_tiny_klein",
        size="tiny",
        default_generation=TINY_GENERATION,
    )
    yield ModelSpec(
        name="medium-flux2-klein",
        family="flux2_klein",
        summary="random-weight ~59 M-parameter Flux2KleinPipeline (CFG as two calls), built offline; for benchmarks",
        build="omni_family_flux2.tiny:build_medium_klein",
        size="medium",
        default_generation={**TINY_GENERATION, "height": 256, "width": 256, "num_inference_steps": 20},
    )
