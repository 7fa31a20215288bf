import numpy as np
import pytest
from omni.testing import FamilyConformance


class TestZImageFamily(FamilyConformance):
    family = "zimage"
    pipeline_class = "ZImagePipeline"
    tiny_model = "tiny-zimage"
    hub_ids = ("Tongyi-MAI/Z-Image-Turbo", "Tongyi-MAI/Z-Image")
    expected_shape = (1, 64, 64, 3)


@pytest.mark.parametrize("task, inputs", [("i2i", {"image"}), ("inpaint", {"image", "mask"})])
def test_tasks_run_from_the_loaded_components(task, inputs):
    import omni

    image = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1.0
    given = {"image": image, "mask": mask}
    result = omni.run("tiny-zimage", task=task, strength=0.6, **{k: given[k] for k in inputs})
    assert result.output.shape == (1, 64, 64, 3) and np.isfinite(result.output).all()


def test_size_that_the_pipeline_would_refuse_is_refused_first():
    """ZImagePipeline raises on sizes that are not multiples of 16; the family's Limits refuse them before
    anything loads, naming the field."""
    import omni
    from omni.errors import OmniError

    with pytest.raises(OmniError, match="height"):
        omni.run("tiny-zimage", height=72)
