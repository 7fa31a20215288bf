from omni.testing import FamilyConformance


class TestQwenImageFamily(FamilyConformance):
    family = "qwenimage"
    pipeline_class = "QwenImagePipeline"
    tiny_model = "tiny-qwenimage"
    hub_ids = ("Qwen/Qwen-Image", "Qwen/Qwen-Image-Edit", "Qwen/Qwen-Image-Edit-2509")
    expected_shape = (1, 64, 64, 3)
