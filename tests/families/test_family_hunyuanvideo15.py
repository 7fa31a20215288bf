import numpy as np
import pytest
from omni.testing import FamilyConformance


class TestHunyuanVideo15Family(FamilyConformance):
    family = "hunyuanvideo15"
    pipeline_class = "HunyuanVideo15Pipeline"
    tiny_model = "tiny-hunyuanvideo15"
    hub_ids = ("hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v", "hunyuanvideo-community/HunyuanVideo-1.5-720p_i2v")
    expected_shape = (1, 5, 32, 32, 3)


def test_frame_count_off_the_4k_plus_1_rule_is_refused():
    """The pipeline silently cuts (num_frames - 1) // 4 + 1 latent frames; the family refuses other counts."""
    import omni
    from omni.errors import OmniError

    with pytest.raises(OmniError, match="num_frames"):
        omni.run("tiny-hunyuanvideo15", num_frames=6)


def test_image_to_video_needs_an_image_to_video_checkpoint():
    """HunyuanVideo15ImageToVideoPipeline needs image_encoder and feature_extractor, which a text-to-video
    checkpoint (the tiny model) lacks: the request fails with one line instead of a half-built pipeline."""
    import omni
    from omni.errors import OmniError

    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(OmniError, match="HunyuanVideo15ImageToVideoPipeline"):
        omni.run("tiny-hunyuanvideo15", image=image)
