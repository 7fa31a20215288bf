import pytest

import omni
from omni.matrix import CompatMatrix
from omni.plugins import get_registry
from omni.testing import OptimizationConformance
from omni.verify import psnr


class TestLayerwiseCasting(OptimizationConformance):
    optimization = "layerwise_casting"
    run_verification = False


def test_parameter_bytes_shrink_and_irreversibility_is_reported():
    base = omni.run("tiny-flux").images
    result = omni.run("tiny-flux", config={"enable_layerwise_casting": True})
    res = result.report.result("layerwise_casting")
    assert res.status == "applied" and res.details["reversible"] is False
    pb = result.report.memory["param_bytes"]["transformer"]
    assert pb["after"] < 0.5 * pb["before"]
    assert res.details["bytes_before"]["transformer"] == pb["before"]
    assert res.details["bytes_after"]["transformer"] == pb["after"]
    assert result.report.memory["param_bytes"]["vae"]["after"] == result.report.memory["param_bytes"]["vae"]["before"]
    assert result.report.device_placement["transformer"]["quantization"] == "layerwise float8_e4m3fn"
    # lossy, within the declared floor
    assert 0 < psnr(result.images, base) < float("inf")
    assert psnr(result.images, base) >= registry_spec().tolerance_psnr


def registry_spec():
    return get_registry().optimization("layerwise_casting").spec


def test_optimize_reports_it_cannot_be_undone():
    pipe = omni.run("tiny-flux").pipe
    handle = omni.optimize(pipe, {"enable_layerwise_casting": True})
    assert handle.report.result("layerwise_casting").details["reversible"] is False
    assert handle.undo() == ["layerwise_casting: has no undo"]


def test_storage_dtype_option_is_used():
    result = omni.run("tiny-flux", config={"enable_layerwise_casting": True,
                                           "layerwise_casting_storage_dtype": "float8_e5m2"})
    res = result.report.result("layerwise_casting")
    assert res.status == "applied" and res.details["storage_dtype"] == "float8_e5m2"
    assert result.report.device_placement["transformer"]["dtype"] == "float8_e5m2"


def test_compute_dtype_other_than_the_run_dtype_is_skipped_with_the_fix():
    result = omni.run("tiny-flux", config={"enable_layerwise_casting": True, "layerwise_casting_compute_dtype": "bf16"})
    res = result.report.result("layerwise_casting")
    assert res.status == "skipped" and "--dtype bfloat16" in res.reason


@pytest.mark.parametrize("other", ["torchao", "torchao_load", "torchao_fp8_dynamic", "torchao_int4_weight_only",
                                   "gguf"])
def test_does_not_stack_with_quantized_weights(other):
    plan = CompatMatrix(get_registry()).plan("flux", [other, "layerwise_casting"])
    assert "layerwise_casting" not in plan.names()
    skipped = next(s for s in plan.skipped if s.name == "layerwise_casting")
    assert skipped.reasons[0].startswith(f"conflicts with {other}")


def test_does_not_stack_with_torchao_in_a_run():
    result = omni.run("tiny-flux", optimize=["torchao", "layerwise_casting"])
    res = result.report.result("layerwise_casting")
    assert res.status == "skipped" and res.reason.startswith("conflicts with torchao")
