"""TeaCache: decisions, per-step hits, state reset, calibration that enables a family."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import omni
from omni.testing import OptimizationConformance
from omni.verify import psnr


class TestTeaCache(OptimizationConformance):
    optimization = "teacache"
    run_verification = False


@pytest.fixture(scope="module")
def baseline():
    return omni.run("tiny-flux", num_inference_steps=10).images


def _hits(result):
    (entry,) = result.report.cache_hits
    return "".join("C" if s["computed"] else "R" for s in entry["steps"])


def test_zero_threshold_is_bit_identical_and_computes_every_step(baseline):
    result = omni.run("tiny-flux", sets={"cache": "tea_cache", "tea_cache_ratio": 0}, num_inference_steps=10)
    np.testing.assert_array_equal(result.images, baseline)
    assert _hits(result) == "C" * 10


def test_reuse_follows_the_threshold_and_first_last_steps_compute(baseline):
    low = omni.run("tiny-flux", sets={"cache": "tea_cache", "tea_cache_ratio": 0.2}, num_inference_steps=10)
    high = omni.run("tiny-flux", sets={"cache": "tea_cache", "tea_cache_ratio": 1.0}, num_inference_steps=10)
    lo, hi = _hits(low), _hits(high)
    assert lo[0] == hi[0] == "C" and lo[-1] == hi[-1] == "C"
    assert 0 < lo.count("R") < hi.count("R")
    assert psnr(low.images, baseline) > psnr(high.images, baseline) > 30
    entry = high.report.cache_hits[0]
    assert entry["method"] == "teacache" and entry["computed"] + entry["reused"] == 10


def test_interval_forces_computes_and_state_resets_between_runs():
    cfg = {"cache": "tea_cache", "tea_cache_ratio": 5.0, "tea_cache_interval": 3}
    first = omni.run("tiny-flux", sets=cfg, num_inference_steps=10)
    assert "RRR" not in _hits(first)
    result = omni.run("tiny-flux", sets=cfg, num_inference_steps=10)
    np.testing.assert_array_equal(first.images, result.images)  # fresh state each run


def test_vllm_omni_keys_map_onto_teacache():
    from omni.config import resolve_config
    from omni.plugins import get_registry

    cfg = resolve_config(get_registry(), {"cache_backend": "tea_cache", "cache_config": {"rel_l1_thresh": 0.3}})
    assert cfg.requested == {"teacache": {"rel_l1_thresh": 0.3}}


def test_calibration_writes_coefficients_the_run_path_uses(tmp_path):
    env = {**os.environ, "OMNI_TEACACHE_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle on a blue background\na green square on a white background\n")
    proc = subprocess.run([sys.executable, "-m", "omni", "calibrate", "teacache", "tiny-flux", "--prompts",
                           str(prompts), "--steps", "8", "--json"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["family"] == "flux" and len(data["coefficients"]) == 5 and data["points"] >= 10
    stored = json.loads((tmp_path / "flux.json").read_text())
    assert stored["coefficients"] == data["coefficients"]
    caps = subprocess.run([sys.executable, "-m", "omni", "capabilities", "tiny-flux", "--json"], capture_output=True,
                          text=True, env=env, timeout=60)
    row = next(r for r in json.loads(caps.stdout)["optimizations"] if r["optimization"] == "teacache")
    assert row["status"] == "supported" and "calibrated by omni calibrate teacache" in row["reasons"][0]
    result = omni.run("tiny-flux", sets={"cache": "tea_cache", "teacache.calibration": str(tmp_path / "flux.json")})
    details = result.report.result("teacache").details
    assert details["coefficients"] == data["coefficients"] and details["coefficients_source"].startswith("calibration")


def test_bad_calibration_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"family": "flux"}')
    from omni.errors import UsageError

    with pytest.raises(UsageError, match="lacks probe, coefficients"):
        omni.run("tiny-flux", sets={"cache": "tea_cache", "teacache.calibration": str(bad)})


def test_calibration_enables_teacache_for_a_family_without_coefficients(tmp_path):
    env = {**os.environ, "OMNI_TEACACHE_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}

    def teacache_row():
        out = subprocess.run([sys.executable, "-m", "omni", "capabilities", "tiny-sd3", "--json"], capture_output=True,
                             text=True, env=env, timeout=60, check=True).stdout
        return next(r for r in json.loads(out)["optimizations"] if r["optimization"] == "teacache")

    before = teacache_row()
    assert before["status"] == "unsupported" and "omni calibrate teacache" in " ".join(before["reasons"])
    proc = subprocess.run([sys.executable, "-m", "omni", "calibrate", "teacache", "tiny-sd3", "--steps", "10", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["probe"] == "block0-input"
    assert teacache_row()["status"] == "supported"
    run = subprocess.run([sys.executable, "-m", "omni", "run", "tiny-sd3", "--optimize", "teacache", "--set",
                          "teacache.rel_l1_thresh=0.5", "--steps", "10", "--json", "--output",
                          str(tmp_path / "sd3.png")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["config_resolved"][0]["status"] == "applied"
    assert report["cache_hits"][0]["reused"] > 0


def test_optimizing_a_pipeline_that_already_ran_keeps_per_context_state():
    """diffusers caches the child-registry list on the first cache_context; hooks added later must
    still receive the pipeline's "cond"/"uncond" contexts (true CFG on Qwen-Image)."""
    pipe = omni.run("tiny-qwenimage", num_inference_steps=2).pipe  # has run: registry caches are built
    omni.optimize(pipe, {"cache": "tea_cache", "tea_cache_ratio": 0.5})
    state_manager = pipe.transformer.transformer_blocks[0]._diffusers_hook.hooks["omni_teacache_head"].state_manager
    seen = []
    original = state_manager.get_state

    def recording():
        seen.append(state_manager._context.name if state_manager._context else None)
        return original()

    state_manager.get_state = recording
    pipe(prompt="a red circle", negative_prompt="", true_cfg_scale=3.0, num_inference_steps=4, height=64, width=64,
         max_sequence_length=32)
    assert set(seen) == {"cond", "uncond"}, seen
