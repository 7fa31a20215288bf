"""Qwen-Image: text-to-image (tiny-qwenimage), image-to-image and inpaint from the same components; edit needs
an edit checkpoint's processor, which a text-to-image model lacks (one line naming it)."""

import numpy as np
import pytest

import omni
from omni.errors import FieldError
from omni.testing import FamilyConformance
from omni.verify import synthetic_inputs

INPUTS = synthetic_inputs("inpaint", {"height": 64, "width": 64})


class TestQwenImageFamily(FamilyConformance):
    family = "qwenimage"
    pipeline_class = "QwenImagePipeline"
    tiny_model = "tiny-qwenimage"
    hub_ids = ("Qwen/Qwen-Image", "Qwen/Qwen-Image-Edit", "Qwen/Qwen-Image-Edit-2509")
    expected_shape = (1, 64, 64, 3)


@pytest.fixture(scope="module")
def engine():
    with omni.Engine("tiny-qwenimage") as eng:
        yield eng


@pytest.mark.parametrize("fields, task, pipeline", [
    ({"image": INPUTS["image"], "strength": 0.6}, "i2i", "QwenImageImg2ImgPipeline"),
    ({"image": INPUTS["image"], "mask": INPUTS["mask"]}, "inpaint", "QwenImageInpaintPipeline"),
])
def test_image_tasks_run_from_the_text_to_image_components(engine, fields, task, pipeline):
    result = engine.generate("a red circle", **fields)
    gen = result.report.generation
    assert (gen["task"], gen["pipeline"]) == (task, pipeline)
    assert result.output.shape == (1, 64, 64, 3) and np.isfinite(result.output).all()


def test_edit_from_a_text_to_image_model_names_the_missing_processor(engine):
    with pytest.raises(FieldError, match="QwenImageEditPipeline cannot be built from this model's components: it "
                                         "needs processor, which this model does not have") as err:
        engine.submit("make it blue", image=INPUTS["image"], task="edit")
    assert err.value.param == "task"


def test_edit_cells_are_declared_unproven():
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry
    from omni.specs import Support

    matrix = CompatMatrix(get_registry())
    supported = [o for o in matrix.optimization_names if matrix.cell("qwenimage", o).status is Support.SUPPORTED]
    assert supported
    for name in supported:  # every cell claimed for qwenimage has an edit claim: none is left supported unproven
        cell = matrix.cell("qwenimage", name, "edit")
        assert cell.status is Support.UNSUPPORTED and "not verified" in cell.reasons[0], name
