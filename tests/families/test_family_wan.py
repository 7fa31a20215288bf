"""Wan: text-to-video (tiny-wan), video-to-video from the same components, image-to-video on an I2V model
(tiny-wan-i2v); a task the loaded model's transformer cannot run is one line naming why."""

import numpy as np
import pytest

import omni
from omni.errors import FieldError
from omni.testing import FamilyConformance
from omni.verify import synthetic_inputs

SIZE = {"height": 32, "width": 32, "num_frames": 9}
IMAGE = synthetic_inputs("i2v", SIZE)["image"]
VIDEO = synthetic_inputs("v2v", SIZE)["video"]


class TestWanFamily(FamilyConformance):
    family = "wan"
    pipeline_class = "WanPipeline"
    tiny_model = "tiny-wan"
    hub_ids = ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
               "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", "Wan-AI/Wan2.2-T2V-A14B-Diffusers")
    expected_shape = (1, 9, 32, 32, 3)


class TestWanImageToVideoModel(FamilyConformance):
    family = "wan"
    pipeline_class = "WanImageToVideoPipeline"
    tiny_model = "tiny-wan-i2v"
    expected_shape = (1, 9, 32, 32, 3)


@pytest.fixture(scope="module")
def t2v():
    with omni.Engine("tiny-wan") as eng:
        yield eng


@pytest.fixture(scope="module")
def i2v():
    with omni.Engine("tiny-wan-i2v") as eng:
        yield eng


def test_video_to_video_runs_from_the_text_to_video_components(t2v):
    # a prompt no earlier request encoded: WanVideoToVideoPipeline cleans it with ftfy (a dependency of the family)
    first = t2v.generate("a green triangle over the sea", video=VIDEO, strength=0.7)
    gen = first.report.generation
    assert (gen["task"], gen["pipeline"]) == ("v2v", "WanVideoToVideoPipeline")
    assert first.output.shape == (1, 9, 32, 32, 3) and np.isfinite(first.output).all()
    weaker = t2v.generate("a green triangle over the sea", video=VIDEO, strength=0.3)
    assert not np.array_equal(first.output, weaker.output)  # strength reaches the pipeline


def test_image_to_video_runs_on_the_i2v_model(i2v):
    result = i2v.generate("a red circle drifting", image=IMAGE)
    gen = result.report.generation
    assert (gen["task"], gen["pipeline"]) == ("i2v", "WanImageToVideoPipeline")
    assert result.output.shape == (1, 9, 32, 32, 3) and np.isfinite(result.output).all()
    other = i2v.generate("a red circle drifting", image=IMAGE[::-1].copy())
    assert not np.array_equal(result.output, other.output)  # the image conditions the video


def test_omni_run_takes_the_image(tmp_path):
    from PIL import Image

    path = tmp_path / "first-frame.png"
    Image.fromarray((IMAGE * 255).astype("uint8")).save(path)
    result = omni.run("tiny-wan-i2v", image=str(path), num_inference_steps=2)
    assert result.report.generation["task"] == "i2v" and result.output.shape == (1, 9, 32, 32, 3)


@pytest.mark.parametrize("engine, fields, message", [
    ("t2v", {"image": IMAGE}, "WanImageToVideoPipeline cannot run i2v on this model: its transformer takes 16 input "
                              "channels, image-to-video needs 36"),
    ("i2v", {"task": "t2v"}, "WanPipeline cannot run t2v on this model: its transformer takes 36 input channels"),
    ("i2v", {"video": VIDEO}, "WanVideoToVideoPipeline cannot run v2v on this model"),
    ("i2v", {}, "task i2v needs image"),
    ("t2v", {"video": VIDEO[:8]}, "8 frames: wan takes 4k\\+1 frames \\(e.g. 5\\)"),
])
def test_a_task_the_model_cannot_run_is_one_line(request, engine, fields, message):
    with pytest.raises(FieldError, match=message) as err:
        request.getfixturevalue(engine).submit("a red circle", **fields)
    assert err.value.param in ("task", "image", "video") and "\n" not in str(err.value)


def test_wan22_ti2v_runs_image_to_video_from_its_text_to_video_components():
    """Wan2.2 TI2V-5B is a WanPipeline with expand_timesteps: the image latents replace the first latent frame, so
    the text-to-video transformer serves image-to-video (the task check lets it through)."""
    import torch
    from diffusers import WanImageToVideoPipeline
    from PIL import Image

    from omni_family_wan.tasks import task_check
    from omni_family_wan.tiny import make_pipeline

    pipe = make_pipeline("tiny")
    assert task_check("i2v", WanImageToVideoPipeline.from_pipe(pipe)) is not None
    pipe.register_to_config(expand_timesteps=True)
    sibling = WanImageToVideoPipeline.from_pipe(pipe)
    assert task_check("i2v", sibling) is None
    out = sibling(image=Image.fromarray((IMAGE * 255).astype("uint8")), prompt="a red circle", num_inference_steps=2,
                  max_sequence_length=32, generator=torch.Generator().manual_seed(0), output_type="np", **SIZE).frames
    assert out.shape == (1, 9, 32, 32, 3) and np.isfinite(out).all()


def test_verify_runs_each_task_on_a_model_that_can_run_it():
    """i2v cells on tiny-wan-i2v (its own pipeline, task i2v), v2v cells on tiny-wan, no i2v cell on tiny-wan."""
    from omni.plugins import get_registry
    from omni.verify import cells_to_verify

    cells = cells_to_verify(get_registry(), family="wan")
    by_model = {(c.model, c.task) for c in cells}
    assert {("tiny-wan", ""), ("tiny-wan", "v2v"), ("tiny-wan-i2v", "i2v")} == by_model
    assert not any(c.optimization == "cache_dit" and c.task == "v2v" for c in cells)  # declared unsupported
