from omni.testing import FamilyConformance


class TestSd3Family(FamilyConformance):
    family = "sd3"
    pipeline_class = "StableDiffusion3Pipeline"
    tiny_model = "tiny-sd3"
    hub_ids = ("stabilityai/stable-diffusion-3-medium-diffusers", "stabilityai/stable-diffusion-3.5-large",
               "stabilityai/stable-diffusion-3.5-medium")
    expected_shape = (1, 64, 64, 3)
