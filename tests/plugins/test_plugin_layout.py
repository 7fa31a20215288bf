import numpy as np
import pytest
import torch

import omni
from omni.matrix import CompatMatrix
from omni.plugins import get_registry
from omni.testing import OptimizationConformance
from omni.testing.undo import check_undo


class TestFuseQkv(OptimizationConformance):
    optimization = "fuse_qkv"
    run_verification = False


class TestChannelsLast(OptimizationConformance):
    optimization = "channels_last"
    run_verification = False


@pytest.mark.parametrize("model, component", [("tiny-flux", "transformer"), ("tiny-sd15", "unet")])
def test_fuse_qkv_is_bit_exact_and_really_fuses(model, component):
    base = omni.run(model).images
    result = omni.run(model, config={"fuse_qkv": True})
    res = result.report.result("fuse_qkv")
    assert res.status == "applied" and res.details["attention_modules_fused"][component] > 0
    assert any(getattr(m, "fused_projections", False) for m in getattr(result.pipe, component).modules())
    np.testing.assert_array_equal(base, result.images)


def test_fuse_qkv_is_planned_before_every_later_quantize_step():
    registry = get_registry()
    matrix = CompatMatrix(registry)
    fuse = registry.optimization("fuse_qkv").spec
    later = [d.spec.name for d in registry.optimizations.values()
             if d.spec.stage is fuse.stage and d.spec.order > fuse.order]
    assert {"torchao", "layerwise_casting"} <= set(later)
    for other in later:
        plan = matrix.plan("flux", [other, "fuse_qkv"])
        if "fuse_qkv" in plan.names() and other in plan.names():
            assert plan.names().index("fuse_qkv") < plan.names().index(other), plan.names()


def test_fuse_qkv_then_torchao_runs_and_fuses():
    result = omni.run("tiny-flux", optimize=["torchao", "fuse_qkv"])
    assert [(r.name, r.status) for r in result.report.config_resolved] == [("fuse_qkv", "applied"),
                                                                        ("torchao", "applied")]
    assert any(getattr(m, "fused_projections", False) for m in result.pipe.transformer.modules())


def test_fuse_qkv_refuses_already_quantized_weights_before_touching_them():
    pipe = omni.run("tiny-flux", optimize=["torchao"]).pipe
    _, report = omni.optimize(pipe, optimize=["fuse_qkv"])
    res = report.result("fuse_qkv")
    assert res.status == "skipped" and "before quantization" in res.reason
    assert not any(getattr(m, "fused_projections", False) for m in pipe.transformer.modules())


def test_fuse_qkv_conflicts_with_gguf():
    plan = CompatMatrix(get_registry()).plan("flux", ["gguf", "fuse_qkv"])
    assert "fuse_qkv" not in plan.names()
    assert "Only Tensors of floating point" in plan.skipped[0].reasons[0]


def test_channels_last_is_for_conv_heavy_denoisers_and_covers_the_vae():
    cell = CompatMatrix(get_registry()).cell("flux", "channels_last")
    assert cell.status.value == "unsupported" and "conv-heavy" in cell.reasons[0]
    base = omni.run("tiny-sd15").images
    result = omni.run("tiny-sd15", optimize=["channels_last"])
    assert result.report.result("channels_last").details["components"] == ["unet", "vae"]
    for component in (result.pipe.unet, result.pipe.vae):
        conv = next(m for m in component.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert not conv.weight.is_contiguous()
    np.testing.assert_allclose(result.images, base, atol=1e-4)


def test_undo_unfuses_the_projections():
    _, _, pipe = check_undo("tiny-flux", ["fuse_qkv"])
    assert not any(getattr(m, "fused_projections", False) for m in pipe.transformer.modules())
    assert not any(hasattr(m, "to_qkv") for m in pipe.transformer.modules())


def test_undo_restores_the_contiguous_layout():
    _, _, pipe = check_undo("tiny-sd15", ["channels_last"])
    for component in (pipe.unet, pipe.vae):
        assert all(p.is_contiguous() for p in component.parameters())
