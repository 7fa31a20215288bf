"""Image inputs and tasks: a request's inputs choose the task, the task's pipeline class is built once from the
same optimized components (no weights loaded twice, no dtype cast), bad inputs are one line naming the field."""

import numpy as np
import pytest
import torch

import omni
from omni.errors import FieldError
from omni.verify import synthetic_inputs

INPUTS = synthetic_inputs("inpaint", {"height": 64, "width": 64})
IMAGE, MASK = INPUTS["image"], INPUTS["mask"]


@pytest.fixture(scope="module")
def engine():
    with omni.Engine("tiny-flux", optimize=["first_block_cache"], dtype="bfloat16") as eng:
        yield eng


@pytest.mark.parametrize("fields, task, pipeline", [
    ({}, "t2i", "FluxPipeline"),
    ({"image": IMAGE, "strength": 0.6}, "i2i", "FluxImg2ImgPipeline"),
    ({"image": IMAGE, "mask": MASK}, "inpaint", "FluxInpaintPipeline"),
    ({"image": IMAGE, "task": "edit"}, "edit", "FluxKontextPipeline"),
])
def test_inputs_choose_the_task_and_its_pipeline(engine, fields, task, pipeline):
    result = engine.generate("a red circle on a blue background", **fields)
    gen = result.report.generation
    assert (gen["task"], gen["pipeline"]) == (task, pipeline)
    assert result.images.shape == (1, 64, 64, 3) and np.isfinite(result.images).all()
    hits = next(c for c in result.report.cache_hits if c["method"] == "first_block_cache")
    assert hits["steps"] and hits["computed"] > 0  # the cache hooks on the shared transformer ran
    assert engine.pipe.transformer.dtype == torch.bfloat16  # building the task pipeline cast nothing


def test_task_pipelines_share_the_components_and_are_built_once(engine):
    from omni.runtime.tasks import pipeline_for

    first = pipeline_for(engine.session, "i2i")
    assert pipeline_for(engine.session, "i2i") is first
    assert first.transformer is engine.pipe.transformer and first.vae is engine.pipe.vae


@pytest.mark.parametrize("fields, param, message", [
    ({"mask": MASK}, "mask", "a mask needs an image"),
    ({"image": "/does/not/exist.png"}, "image", "does not exist"),
    ({"image": b"not an image"}, "image", "cannot read the upload as an image"),
    ({"image": IMAGE, "mask": MASK[:32]}, "mask", "the mask is 64x32 but the image is 64x64"),
    ({"image": IMAGE, "strength": 1.5}, "strength", "must be in \\(0, 1\\]"),
    ({"strength": 0.5}, "strength", "applies to an image or video input"),
    ({"image": IMAGE, "task": "t2v"}, "task", "flux runs t2i, i2i, inpaint, edit"),
    ({"task": "i2i"}, "image", "task i2i needs image"),
    ({"image": IMAGE[:40]}, "image", "height 40 is not a multiple of 16"),
])
def test_bad_inputs_are_one_line_naming_the_field(engine, fields, param, message):
    with pytest.raises(FieldError, match=message) as err:
        engine.submit("a red circle", **fields)
    assert err.value.param == param


def test_converted_inputs_are_noted(engine, tmp_path):
    from PIL import Image

    path = tmp_path / "rgba.png"
    Image.fromarray((np.concatenate([IMAGE, np.ones_like(IMAGE[..., :1])], -1) * 255).astype("uint8")).save(path)
    result = engine.generate("a red circle", image=str(path), strength=0.5)
    assert "image: RGBA image converted to RGB (alpha dropped)" in result.report.notes


def test_a_step_unsupported_for_the_task_refuses_the_request():
    with omni.Engine("tiny-flux", optimize=["cache_dit"]) as eng:
        if "cache_dit" not in eng.session.ctx.applied:
            pytest.skip("cache-dit is not installed")
        with pytest.raises(FieldError, match="cache_dit is applied on this engine and does not work for i2i"):
            eng.submit("a red circle", image=IMAGE)
        assert eng.generate("a red circle").report.generation["task"] == "t2i"


def test_optimize_takes_a_pipeline_no_family_claims_through_the_generic_family(tmp_path):
    from omni.sdk import tiny

    import diffusers
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer = tiny.t5_tokenizer()
    tiny.seeded(0)
    pipe = diffusers.PixArtAlphaPipeline(
        tokenizer=tokenizer, scheduler=DPMSolverMultistepScheduler(),
        text_encoder=T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=1,
                                             num_heads=2, relative_attention_num_buckets=8, pad_token_id=0,
                                             eos_token_id=1, decoder_start_token_id=0)),
        transformer=PixArtTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                             num_layers=2, cross_attention_dim=16, sample_size=8, caption_channels=32,
                                             norm_num_groups=4),
        vae=AutoencoderKL(latent_channels=4, block_out_channels=(8, 8, 8, 8), norm_num_groups=8, layers_per_block=1,
                          down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4))
    handle = omni.optimize(pipe, {"optimize": ["first_block_cache"]})
    assert handle.report.family == "generic"
    assert handle.report.result("first_block_cache").status == "applied"
    assert any("generic family for PixArtAlphaPipeline" in n for n in handle.report.notes)
    assert handle.undo() == []
