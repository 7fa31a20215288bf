import omni
from omni.matrix import CompatMatrix
from omni.plugins import get_registry
from omni.testing import OptimizationConformance


class TestFuseQkv(OptimizationConformance):
    optimization = "fuse_qkv"
    run_verification = False


class TestChannelsLast(OptimizationConformance):
    optimization = "channels_last"
    run_verification = False


def test_fuse_qkv_runs_before_torchao_and_fuses():
    plan = CompatMatrix(get_registry()).plan("flux", ["torchao", "fuse_qkv"])
    assert plan.names()[:2] == ["fuse_qkv", "torchao"]
    result = omni.run("tiny-flux", optimize=["torchao", "fuse_qkv"])
    assert [r.status for r in result.report.config_resolved] == ["applied", "applied"]
    assert any(getattr(m, "fused_projections", False) for m in result.pipe.transformer.modules())


def test_channels_last_is_for_conv_heavy_denoisers():
    cell = CompatMatrix(get_registry()).cell("flux", "channels_last")
    assert cell.status.value == "unsupported" and "conv-heavy" in cell.reasons[0]
    import torch

    result = omni.run("tiny-sd15", optimize=["channels_last"])
    conv = next(m for m in result.pipe.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
