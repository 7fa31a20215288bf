from omni.testing import FamilyConformance


class TestLtxFamily(FamilyConformance):
    family = "ltx"
    pipeline_class = "LTXPipeline"
    tiny_model = "tiny-ltx"
    hub_ids = ("Lightricks/LTX-Video", "Lightricks/LTX-Video-0.9.7-dev")
    expected_shape = (1, 9, 32, 32, 3)
