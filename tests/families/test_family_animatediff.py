from omni.testing import FamilyConformance


class TestAnimateDiffFamily(FamilyConformance):
    family = "animatediff"
    pipeline_class = "AnimateDiffPipeline"
    tiny_model = "tiny-animatediff"
    expected_shape = (1, 4, 64, 64, 3)
