from omni.testing import FamilyConformance


class TestSdxlFamily(FamilyConformance):
    family = "sdxl"
    pipeline_class = "StableDiffusionXLPipeline"
    tiny_model = "tiny-sdxl"
    hub_ids = ("stabilityai/stable-diffusion-xl-base-1.0", "stabilityai/stable-diffusion-xl-refiner-1.0",
               "stabilityai/sdxl-turbo")
    expected_shape = (1, 64, 64, 3)
