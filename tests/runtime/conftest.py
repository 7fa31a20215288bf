import pytest

import omni
from omni.runtime.context import Applied, Skip
from omni.specs import ConfigKey, OptimizationSpec, Option, Stage


class FakeOptimizations:
    """In-process plugin implementing its stage hooks itself (no impl path)."""

    def __init__(self):
        self.calls = []

    @omni.hookimpl
    def omni_register_optimizations(self):
        yield OptimizationSpec(name="scale_noise", stage=Stage.CACHE, summary="multiplies the transformer output",
                               lossless=False, tolerance_psnr=1.0, claims={"flux": omni.supported("test")},
                               options=(Option("factor", "float", 1.0, "multiplier", min=0.0),),
                               config_keys=(ConfigKey("scale_factor", option="factor"),
                                            ConfigKey("enable_scale", enables=True)))
        yield OptimizationSpec(name="breaks_cleanly", stage=Stage.CACHE, summary="raises before touching anything",
                               lossless=True, order=1)
        yield OptimizationSpec(name="breaks_dirty", stage=Stage.QUANTIZE, summary="modifies, then raises",
                               lossless=True)
        yield OptimizationSpec(name="skips_at_runtime", stage=Stage.DECODE, summary="raises Skip", lossless=True)
        yield OptimizationSpec(name="unet_only", stage=Stage.CACHE, summary="needs a UNet", lossless=True,
                               requires_traits={"denoiser:unet"}, exclusive_group="test-cache")
        yield OptimizationSpec(name="cache_one", stage=Stage.CACHE, summary="group member", lossless=True,
                               exclusive_group="test-cache", order=5)
        yield OptimizationSpec(name="cache_two", stage=Stage.CACHE, summary="group member", lossless=True,
                               exclusive_group="test-cache", order=6)

    @omni.hookimpl
    def omni_cache(self, ctx, step):
        self.calls.append(step.name)
        if step.name == "breaks_cleanly":
            raise RuntimeError("nothing to hook")
        if step.name == "scale_noise":
            module = ctx.pipe.transformer
            handle = module.register_forward_hook(
                lambda m, a, out: (out[0] * step.options["factor"],) + tuple(out[1:]))
            return Applied(details={"factor": step.options["factor"]}, undo=handle.remove)
        return Applied()

    @omni.hookimpl
    def omni_quantize(self, ctx, step):
        ctx.pipe.transformer.register_forward_hook(lambda m, a, out: out)  # a change the fingerprint sees
        raise RuntimeError("half way")

    @omni.hookimpl
    def omni_decode(self, ctx, step):
        raise Skip("no VAE feature for this test")


@pytest.fixture
def fake():
    return FakeOptimizations()


@pytest.fixture
def registry(fake):
    from omni.plugins import Selection, load_registry

    return load_registry(selection=Selection(), strict=False, extra=[("fake", fake)])
