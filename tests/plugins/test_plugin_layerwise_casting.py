import omni
from omni.testing import OptimizationConformance


class TestLayerwiseCasting(OptimizationConformance):
    optimization = "layerwise_casting"
    run_verification = False


def test_parameter_bytes_shrink_and_irreversibility_is_reported():
    result = omni.run("tiny-flux", config={"enable_layerwise_casting": True})
    res = result.report.result("layerwise_casting")
    assert res.status == "applied" and res.details["reversible"] is False
    pb = result.report.memory["param_bytes"]["transformer"]
    assert pb["after"] < 0.5 * pb["before"]
    assert result.report.device_placement["transformer"]["quantization"] == "layerwise float8_e4m3fn"


def test_compute_dtype_other_than_the_run_dtype_is_skipped_with_the_fix():
    result = omni.run("tiny-flux", config={"enable_layerwise_casting": True, "layerwise_casting_compute_dtype": "bf16"})
    res = result.report.result("layerwise_casting")
    assert res.status == "skipped" and "--dtype bfloat16" in res.reason


def test_does_not_stack_with_torchao():
    result = omni.run("tiny-flux", optimize=["torchao", "layerwise_casting"])
    res = result.report.result("layerwise_casting")
    assert res.status == "skipped" and res.reason.startswith("conflicts with torchao")
