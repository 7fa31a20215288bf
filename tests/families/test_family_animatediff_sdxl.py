from omni.testing import FamilyConformance


class TestAnimateDiffSdxlFamily(FamilyConformance):
    family = "animatediff_sdxl"
    pipeline_class = "AnimateDiffSDXLPipeline"
    tiny_model = "tiny-animatediff-sdxl"
    expected_shape = (1, 4, 64, 64, 3)
