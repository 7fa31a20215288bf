"""Timings that add up: the parts of a run's total and what is left, with names that say what they measure."""

import pytest

import omni
from omni.runtime.timings import PARTS, format_breakdown, generation_timings, timing_breakdown

RUN = {  # an omni.run report's timings (figures from a tiny-flux run)
    "stages": {"load": 12.319398, "quantize": 2e-05, "place": 4e-06, "cache": 4e-06, "compile": 2e-06,
               "decode": 2e-06},
    "encode": 0.052532, "steps": [0.0167, 0.0166, 0.0165, 0.0166], "denoise": 0.066417, "vae_decode": 0.068663,
    "generate": 0.207204, "queue_wait": 8.7e-05, "total": 24.343694,
}


def test_the_parts_of_an_omni_run_add_up_to_its_total():
    parts = timing_breakdown(RUN)
    assert list(parts) == [k for k in PARTS if k in parts]
    assert abs(sum(parts.values()) - RUN["total"]) < 1e-5
    assert parts["load"] == 12.319398 and parts["vae_decode"] == 0.068663
    assert parts["pipeline_other"] == pytest.approx(0.207204 - 0.052532 - 0.066417 - 0.068663)
    assert parts["other"] == pytest.approx(24.343694 - 12.319398 - 3.2e-05 - 8.7e-05 - 0.207204, abs=1e-6)


def test_an_engine_request_total_leaves_out_the_load_reports_stages():
    request = {**RUN, "total": RUN["queue_wait"] + RUN["generate"]}
    parts = timing_breakdown(request)
    assert "load" not in parts and "optimize" not in parts
    assert abs(sum(parts.values()) - request["total"]) < 1e-5 and parts["other"] < 1e-5


def test_parts_beyond_the_total_are_an_error_not_a_negative_other():
    with pytest.raises(ValueError, match="exceed total"):
        timing_breakdown({**RUN, "write": 1.0, "total": 0.2})


def test_the_printed_line_names_vae_decode_and_other():
    line = format_breakdown({**RUN, "write": 0.01, "total": RUN["total"] + 0.01})
    assert line.startswith("time: total 24.354 s = load 12.319 + encode 0.053 + denoise 0.066 (4 steps, median 16.6 ms)")
    assert "VAE decode 0.069" in line and "write 0.010" in line and line.endswith("other 11.817 s")
    assert "optimize" not in line  # 0.000 s parts are not printed


def test_generation_timings_names():
    t = generation_timings(0.05, [0.1, 0.2], 0.07, 0.5)
    assert t == {"encode": 0.05, "steps": [0.1, 0.2], "denoise": pytest.approx(0.3), "vae_decode": 0.07,
                 "generate": 0.5}


def test_a_real_run_adds_up():
    timings = omni.run("tiny-flux", num_inference_steps=2).report.timings
    parts = timing_breakdown(timings)
    assert "load" in parts and all(v >= 0 for v in parts.values())
    assert abs(sum(parts.values()) - timings["total"]) < 1e-5
