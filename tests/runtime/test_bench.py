"""omni bench on tiny models: each variant in its own process, cache counts, quality, verdicts that
cannot present noise or a no-op as a speedup, first-call overhead that is never negative."""

import numpy as np

from omni.bench import bench, ssim


def test_ssim_properties():
    rng = np.random.default_rng(0)
    a = rng.random((1, 32, 32, 3))
    assert ssim(a, a) == 1.0
    noisy = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    assert 0 < ssim(a, noisy) < 0.9


def test_bench_reports_cache_counts_quality_and_no_per_step_speedup_for_a_cache():
    result = bench("tiny-flux", ["teacache"], sets={"tea_cache_ratio": 1.0}, runs=1, warmup=0,
                   generation={"num_inference_steps": 8})
    opt, base = result["optimized"], result["baseline"]
    assert opt["applied"] == ["teacache"] and base["applied"] == []
    assert opt["cache_reused"] > 0 and opt["cache_computed"] + opt["cache_reused"] == 8
    assert base["cache_computed"] is None
    assert not result["identical"] and 20 < result["psnr_db"] < 200 and 0 < result["ssim"] <= 1
    # one pair: no interval, and the verdict says so instead of calling the ratio a speedup
    assert result["pairs"] == 1 and result["speedup"]["low"] is None and result["verdict"] == "unknown"
    assert "a 95% interval needs 6" in result["summary"]
    assert result["speedup_step"] is None  # a step cache's median step is a computed one
    # each variant ran in its own process: both have their own peak RSS
    assert opt["peak_rss_bytes"] > 0 and base["peak_rss_bytes"] > 0 and "own process" in result["rss_method"]
    assert opt["weights_bytes"] > 0


def test_a_cache_that_reused_nothing_changed_nothing_whatever_the_clock_says():
    result = bench("tiny-flux", ["teacache"], sets={"teacache.rel_l1_thresh": 0.0}, runs=1, warmup=0,
                   generation={"num_inference_steps": 4})
    assert result["optimized"]["cache_reused"] == 0 and result["identical"] and result["psnr_db"] is None
    assert result["verdict"] == "changed nothing"
    assert result["summary"].startswith("changed nothing: teacache reused 0 of 4 denoiser calls")


def test_compile_time_is_reported_apart_from_warm_calls_and_overheads_are_never_negative():
    """The first call of a compiled variant carries the compilation; warm calls do not."""
    result = bench("tiny-flux", ["compile"], sets={"compile.backend": "aot_eager"}, runs=2, warmup=1,
                   generation={"num_inference_steps": 2})
    opt, base = result["optimized"], result["baseline"]
    assert opt["applied"] == ["compile"]
    assert opt["first_call_s"] > opt["max_total_s"] and opt["first_call_overhead_s"] > 0
    assert base["first_call_overhead_s"] >= 0
    assert opt["first_call_overhead_s"] > 5 * base["first_call_overhead_s"]
    assert result["speedup_step"] is not None and result["speedup_step"]["pairs"] == 2
