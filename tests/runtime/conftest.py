"""An in-process plugin with fault-injecting optimizations (behaviour as callables on the declarations)."""

import pytest

import omni
from omni.sdk import Applied, ConfigKey, OptimizationSpec, Option, Skip, Stage


def scale_noise(ctx, step):
    module = ctx.pipe.transformer
    handle = module.register_forward_hook(lambda m, a, out: (out[0] * step.options["factor"],) + tuple(out[1:]))
    return Applied(details={"factor": step.options["factor"]}, undo=handle.remove)


def breaks_cleanly(ctx, step):
    raise RuntimeError("nothing to hook")


def breaks_dirty(ctx, step):
    ctx.pipe.transformer.register_forward_hook(lambda m, a, out: out)  # a change the fingerprint sees
    raise RuntimeError("half way")


def skips_at_runtime(ctx, step):
    raise Skip("no VAE feature for this test")


def nothing(ctx, step):
    return Applied()


def _param(ctx):
    return next(ctx.pipe.transformer.parameters())


def scales_in_place_then_raises(ctx, step):
    import torch

    with torch.no_grad():
        _param(ctx).mul_(1.5)  # same tensor object, same storage: only the version counter changes
    raise RuntimeError("scaled, then failed")


def wraps_decode_then_raises(ctx, step):
    original = ctx.pipe.vae.decode
    ctx.pipe.vae.decode = lambda *a, **k: original(*a, **k)
    raise RuntimeError("wrapped, then failed")


def swaps_scheduler_then_raises(ctx, step):
    ctx.pipe.scheduler = type(ctx.pipe.scheduler).from_config(ctx.pipe.scheduler.config, shift=2.0)
    raise RuntimeError("new scheduler, then failed")


def changes_attribute_then_raises(ctx, step):
    ctx.pipe.vae_scale_factor = 4
    raise RuntimeError("attribute, then failed")


def changes_then_skips(ctx, step):
    ctx.pipe.vae_scale_factor = 4
    raise Skip("changed my mind")


def changes_then_returns_none(ctx, step):
    ctx.pipe.vae_scale_factor = 4
    return None


def undoes_its_change_then_raises(ctx, step):
    import torch

    p = _param(ctx)
    saved = p.detach().clone()
    with torch.no_grad():
        p.mul_(1.5)

    def restore():
        with torch.no_grad():
            p.copy_(saved)

    step.on_undo(restore)
    raise RuntimeError("failed, but registered its undo")


def irreversible(ctx, step):
    import torch

    with torch.no_grad():
        _param(ctx).mul_(1.0)
    return Applied(details={"note": "no undo"})


def _spec(name, impl, stage=Stage.CACHE, **kw):
    kw.setdefault("lossless", True)
    return OptimizationSpec(name=name, stage=stage, summary=name.replace("_", " "), impl=impl, **kw)


class FakeOptimizations:
    @omni.hookimpl
    def omni_register_optimizations(self):
        yield _spec("scale_noise", scale_noise, lossless=False, tolerance_psnr=1.0,
                    claims={"flux": omni.supported("test")},
                    options=(Option("factor", "float", 1.0, "multiplier", min=0.0),),
                    config_keys=(ConfigKey("scale_factor", option="factor"), ConfigKey("enable_scale", enables=True)))
        yield _spec("breaks_cleanly", breaks_cleanly, order=1)
        yield _spec("breaks_dirty", breaks_dirty, stage=Stage.QUANTIZE)
        yield _spec("skips_at_runtime", skips_at_runtime, stage=Stage.DECODE)
        yield _spec("unet_only", nothing, requires_traits={"denoiser:unet"}, exclusive_group="test-cache")
        yield _spec("cache_one", nothing, exclusive_group="test-cache", order=5)
        yield _spec("cache_two", nothing, exclusive_group="test-cache", order=6)
        for fn in (scales_in_place_then_raises, wraps_decode_then_raises, swaps_scheduler_then_raises,
                   changes_attribute_then_raises, changes_then_skips, changes_then_returns_none,
                   undoes_its_change_then_raises):
            yield _spec(fn.__name__, fn, stage=Stage.QUANTIZE)
        yield _spec("irreversible", irreversible, stage=Stage.QUANTIZE, order=1)


@pytest.fixture
def fake():
    return FakeOptimizations()


@pytest.fixture
def registry(fake):
    from omni.plugins import Selection, load_registry

    return load_registry(selection=Selection(), strict=False, extra=[("fake", fake)])
