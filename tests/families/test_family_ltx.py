"""LTX-Video: text-to-video (tiny-ltx) and image-to-video from the same components; no video-to-video task."""

import numpy as np
import pytest

import omni
from omni.errors import FieldError
from omni.testing import FamilyConformance
from omni.verify import synthetic_inputs

SIZE = {"height": 32, "width": 32, "num_frames": 9}
IMAGE = synthetic_inputs("i2v", SIZE)["image"]


class TestLtxFamily(FamilyConformance):
    family = "ltx"
    pipeline_class = "LTXPipeline"
    tiny_model = "tiny-ltx"
    hub_ids = ("Lightricks/LTX-Video", "Lightricks/LTX-Video-0.9.7-dev")
    expected_shape = (1, 9, 32, 32, 3)


@pytest.fixture(scope="module")
def engine():
    with omni.Engine("tiny-ltx") as eng:
        yield eng


def test_image_to_video_runs_from_the_text_to_video_components(engine):
    result = engine.generate("a red circle drifting", image=IMAGE)
    gen = result.report.generation
    assert (gen["task"], gen["pipeline"]) == ("i2v", "LTXImageToVideoPipeline")
    assert result.output.shape == (1, 9, 32, 32, 3) and np.isfinite(result.output).all()
    plain = engine.generate("a red circle drifting")
    assert plain.report.generation["task"] == "t2v" and not np.array_equal(result.output, plain.output)


@pytest.mark.parametrize("fields, param, message", [
    ({"video": synthetic_inputs("v2v", SIZE)["video"]}, "task", "ltx runs t2v, i2v; these inputs ask for v2v"),
    ({"image": IMAGE, "num_frames": 12}, "num_frames", "12 frames: ltx takes 8k\\+1 frames"),
])
def test_bad_task_requests_are_one_line(engine, fields, param, message):
    with pytest.raises(FieldError, match=message) as err:
        engine.submit("a red circle", **fields)
    assert err.value.param == param
