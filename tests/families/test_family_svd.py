from omni.testing import FamilyConformance


class TestSvdFamily(FamilyConformance):
    family = "svd"
    pipeline_class = "StableVideoDiffusionPipeline"
    tiny_model = "tiny-svd"
    hub_ids = ("stabilityai/stable-video-diffusion-img2vid", "stabilityai/stable-video-diffusion-img2vid-xt",
               "stabilityai/stable-video-diffusion-img2vid-xt-1-1")
    expected_shape = (1, 4, 32, 32, 3)
