"""Paired-ratio statistics (omni.stats) and how omni bench words them: no model needed."""

import random

import pytest

from omni.bench import verdict
from omni.stats import PairedRatio, Stopping, median_interval, pairs_needed, repeat_pairs


def test_median_interval_is_the_sign_test_interval():
    assert pairs_needed() == 6
    assert median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) is None  # 5 values: min..max covers only 93.75 %
    assert median_interval([6.0, 1.0, 2.0, 3.0, 4.0, 5.0]) == (1.0, 6.0)  # 96.9 %
    assert median_interval([float(x) for x in range(20)]) == (5.0, 14.0)  # 95.9 %


def test_median_interval_covers_the_median_at_least_as_often_as_claimed():
    rng = random.Random(0)
    for n in (6, 9, 15, 30):
        hits = 0
        for _ in range(2000):
            lo, hi = median_interval([rng.gauss(0.0, 1.0) for _ in range(n)])
            hits += lo <= 0.0 <= hi
        assert hits / 2000 >= 0.94, n


def test_paired_ratio_words():
    noise = PairedRatio([1.0, 1.06, 0.95, 1.02, 0.97, 1.04, 0.99])
    assert noise.compare(1.0) == "includes" and noise.includes(1.0)
    assert "95% interval, 7 pairs" in noise.text()
    faster = PairedRatio([1.9, 2.0, 2.1, 1.95, 2.05, 2.0])
    assert faster.compare(1.0) == "above" and faster.compare(1.9) == "includes"
    few = PairedRatio([5.2, 0.97])
    assert few.interval is None and few.compare(1.0) == "unknown" and "needs 6" in few.text()
    assert few.to_dict()["low"] is None and few.to_dict()["min"] == 0.97


def test_repeat_pairs_stops_when_precise_or_at_a_cap_and_alternates_order():
    order = []

    def a(i):
        order.append(("a", i))
        return 1.0

    def b(i):
        order.append(("b", i))
        return 2.0

    ratio, why = repeat_pairs(a, b, Stopping(min_pairs=6, max_pairs=30, precision=0.01))
    assert why == "precise" and ratio.n == 6 and ratio.median == 2.0
    assert order[:4] == [("a", 0), ("b", 0), ("b", 1), ("a", 1)]
    rng = random.Random(1)
    noisy, why = repeat_pairs(lambda i: 1.0, lambda i: rng.uniform(0.5, 1.5), Stopping(max_pairs=8, precision=0.01))
    assert why == "max pairs" and noisy.n == 8
    _, why = repeat_pairs(lambda i: 1.0, lambda i: rng.uniform(0.5, 1.5),
                          Stopping(min_pairs=2, max_pairs=1000, max_seconds=0.0, precision=0.01))
    assert why == "max seconds"


def _result(applied=("teacache",), identical=False, computed=None, reused=None, skipped=()):
    base = {"label": "baseline", "applied": [], "skipped": []}
    opt = {"label": "+".join(applied) or "teacache", "applied": list(applied), "skipped": list(skipped),
           "cache_computed": computed, "cache_reused": reused}
    return {"baseline": base, "optimized": opt, "identical": identical}


@pytest.mark.parametrize("ratios, expected", [
    ([5.17, 0.97, 1.01, 0.99, 1.03, 0.98], "no measurable difference"),  # the 5.171x outlier
    ([2.0, 2.1, 1.9, 2.05, 1.95, 2.0], "faster"),
    ([0.8, 0.82, 0.79, 0.81, 0.8, 0.78], "slower"),
    ([5.17], "unknown"),
])
def test_verdict_never_reports_noise_as_speed(ratios, expected):
    word, line = verdict(_result(applied=("compile",)), PairedRatio(ratios))
    assert word == expected
    if expected != "faster":
        assert not line.startswith("faster")


def test_a_no_op_is_not_a_speedup():
    word, line = verdict(_result(identical=True, computed=4, reused=0), PairedRatio([1.5] * 6))
    assert word == "changed nothing" and "reused 0 of 4 denoiser calls" in line
    word, line = verdict(_result(applied=(), skipped=("teacache: unsupported",)), PairedRatio([1.5] * 6))
    assert word == "nothing applied" and "teacache: unsupported" in line


def _variant(label, applied, computed=None, reused=None):
    return {"label": label, "applied": applied, "skipped": [], "setup_s": 1.0, "first_call_s": 0.5,
            "first_call_overhead_s": 0.0, "median_total_s": 0.3, "min_total_s": 0.28, "max_total_s": 0.5,
            "median_step_s": 0.04, "runs": 6, "peak_rss_bytes": 500 * 2**20, "weights_bytes": 2**20,
            "peak_cuda_bytes": None, "cache_computed": computed, "cache_reused": reused}


def test_bench_table_prints_the_interval_calls_and_peak_rss(capsys):
    from omni.bench import RSS_METHOD
    from omni.cli.bench_cmd import render

    speedup = PairedRatio([5.17, 0.97, 1.01, 0.99, 1.03, 0.98])
    result = {"device": "cpu", "torch_threads": 1, "seeds": [0], "pairs": 6, "stopped": "max pairs",
              "stopping": {"min_pairs": 6, "max_pairs": 6, "max_seconds": 120.0, "precision": 0.02},
              "baseline": _variant("baseline", []), "optimized": _variant("teacache", ["teacache"], 8, 2),
              "speedup": speedup.to_dict(), "speedup_step": None, "identical": False, "psnr_db": 40.0, "ssim": 0.99,
              "rss_method": RSS_METHOD}
    result["verdict"], result["summary"] = verdict(result, speedup)
    render("tiny-flux", result)
    out = capsys.readouterr().out
    assert "no measurable difference (the interval includes 1.0): speedup 1.000x [0.970, 5.170]" in out
    assert "8/2" in out and "500" in out and "peak RSS MiB" in out and "peak CUDA" not in out
    assert "stopped at max pairs" in out and "per denoising step" not in out and "1 torch thread" in out


def test_bench_refuses_bad_input_before_starting_any_process():
    from omni.bench import bench
    from omni.errors import UsageError

    with pytest.raises(UsageError, match="nope"):
        bench("tiny-flux", ["teacache"], sets={"teacache.nope": 1})
