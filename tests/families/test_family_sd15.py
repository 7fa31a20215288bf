from omni.testing import FamilyConformance


class TestSd15Family(FamilyConformance):
    family = "sd15"
    pipeline_class = "StableDiffusionPipeline"
    tiny_model = "tiny-sd15"
    hub_ids = ("stable-diffusion-v1-5/stable-diffusion-v1-5", "runwayml/stable-diffusion-v1-5",
               "CompVis/stable-diffusion-v1-4")
    expected_shape = (1, 64, 64, 3)
