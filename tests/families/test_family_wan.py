from omni.testing import FamilyConformance


class TestWanFamily(FamilyConformance):
    family = "wan"
    pipeline_class = "WanPipeline"
    tiny_model = "tiny-wan"
    hub_ids = ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
               "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", "Wan-AI/Wan2.2-T2V-A14B-Diffusers")
    expected_shape = (1, 9, 32, 32, 3)
