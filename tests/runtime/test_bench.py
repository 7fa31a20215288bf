import numpy as np

from omni.bench import bench, ssim


def test_ssim_properties():
    rng = np.random.default_rng(0)
    a = rng.random((1, 32, 32, 3))
    assert ssim(a, a) == 1.0
    noisy = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    assert 0 < ssim(a, noisy) < 0.9


def test_bench_reports_speed_quality_and_cache_counts():
    result = bench("tiny-flux", ["teacache"], sets={"tea_cache_ratio": 1.0}, runs=1, warmup=0,
                   generation={"num_inference_steps": 8})
    assert result["optimized"]["applied"] == ["teacache"] and result["baseline"]["applied"] == []
    assert result["optimized"]["cache_reused"] > 0 and result["baseline"]["cache_computed"] is None
    assert not result["identical"] and 20 < result["psnr_db"] < 200 and 0 < result["ssim"] <= 1
    assert result["speedup_total"] > 0


def test_lossless_bench_is_identical():
    result = bench("tiny-flux", ["vae_slicing"], runs=1, warmup=0)
    assert result["identical"] and result["psnr_db"] is None


def test_compile_time_is_reported_apart_from_warm_calls():
    """The first call of a compiled variant carries the compilation; warm calls do not."""
    result = bench("tiny-flux", ["compile"], sets={"compile.backend": "aot_eager"}, runs=1, warmup=1,
                   generation={"num_inference_steps": 2})
    opt, base = result["optimized"], result["baseline"]
    assert opt["applied"] == ["compile"]
    assert opt["first_call_s"] > opt["median_total_s"] and opt["first_call_overhead_s"] > 0
    assert opt["first_call_overhead_s"] > 5 * abs(base["first_call_overhead_s"])
