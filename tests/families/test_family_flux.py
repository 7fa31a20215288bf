from omni.testing import FamilyConformance


class TestFluxFamily(FamilyConformance):
    family = "flux"
    pipeline_class = "FluxPipeline"
    tiny_model = "tiny-flux"
    hub_ids = ("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell")
    expected_shape = (1, 64, 64, 3)
