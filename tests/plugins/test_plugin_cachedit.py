"""cache-dit (DBCache via the external library): per-step hits from cache-dit's counters, option
plumbing, TaylorSeer / SCM, state reset between calls, containment of cache-dit's class patch, undo,
vLLM-Omni keys, availability and UNet refusal."""

import numpy as np
import pytest

import omni
from omni.testing import OptimizationConformance
from omni.verify import psnr

STEPS = 20
PROMPT = "a red circle on a blue background"


class TestCacheDit(OptimizationConformance):
    optimization = "cache_dit"
    run_verification = False


@pytest.fixture(scope="module")
def cache_dit():
    return pytest.importorskip("cache_dit")


@pytest.fixture(scope="module")
def baseline():
    return omni.run("tiny-flux", num_inference_steps=STEPS).images


def _run(model="tiny-flux", steps=STEPS, **sets):
    return omni.run(model, sets={"cache": "cache_dit", **{f"cache_dit.{k}": v for k, v in sets.items()}},
                    num_inference_steps=steps)


def _pattern(entry):
    return "".join("R" * s["reused"] + "C" * s["computed"] for s in entry["steps"])


def _hits(result):
    (entry,) = result.report.cache_hits
    assert entry["method"] == "cache_dit"
    return entry


def test_per_step_hits_come_from_cache_dit_and_reuse_at_a_high_threshold(cache_dit, baseline):
    result = _run(residual_diff_threshold=0.5)
    assert result.report.result("cache_dit").status == "applied"
    entry = _hits(result)
    assert len(entry["steps"]) == STEPS and entry["computed"] + entry["reused"] == STEPS
    assert entry["reused"] > 0
    assert _pattern(entry).startswith("CCCC")  # max_warmup_steps=4
    assert 25 < psnr(result.images, baseline) < float("inf")


def test_zero_threshold_reuses_nothing_and_is_bit_identical(cache_dit, baseline):
    result = _run(residual_diff_threshold=0)
    assert _pattern(_hits(result)) == "C" * STEPS
    np.testing.assert_array_equal(result.images, baseline)


def test_step_limits_reach_cache_dit(cache_dit):
    free = _pattern(_hits(_run(residual_diff_threshold=5.0)))
    assert "RRR" in free and "RRRR" not in free  # max_continuous_cached_steps=3
    capped = _hits(_run(residual_diff_threshold=5.0, max_cached_steps=2))
    assert capped["reused"] == 2
    late = _pattern(_hits(_run(residual_diff_threshold=5.0, max_warmup_steps=8)))
    assert late.startswith("C" * 8) and "R" in late


def test_taylorseer_calibrates_the_reused_steps(cache_dit, baseline):
    plain = _run(residual_diff_threshold=0.5)
    taylor = _run(residual_diff_threshold=0.5, enable_taylorseer=True, taylorseer_order=2)
    details = taylor.report.result("cache_dit").details
    assert details["calibrator"] and "TaylorSeer" in details["calibrator"]
    assert _hits(taylor)["reused"] > 0
    assert not np.array_equal(taylor.images, plain.images)  # the calibrator changes the reused residuals
    assert psnr(taylor.images, baseline) > 25


def test_static_scm_reuses_exactly_the_masked_steps(cache_dit, baseline):
    result = _run(scm_steps_mask_policy="fast", scm_steps_policy="static")
    mask = result.report.result("cache_dit").details["steps_computation_mask"]
    assert mask == cache_dit.steps_mask(mask_policy="fast", total_steps=STEPS)
    assert _pattern(_hits(result)) == "".join("C" if m else "R" for m in mask)
    assert psnr(result.images, baseline) > 25


def test_scm_without_a_known_step_count_is_skipped_before_touching_the_pipeline(cache_dit):
    from omni.runtime.fingerprint import fingerprint

    pipe = omni.run("tiny-flux", num_inference_steps=2).pipe
    cls, before = type(pipe), fingerprint(pipe)
    pipe, report = omni.optimize(pipe, {"cache": "cache_dit", "cache_dit.scm_steps_mask_policy": "fast"})
    res = report.result("cache_dit")
    assert res.status == "skipped" and "step count" in res.reason
    assert type(pipe) is cls and fingerprint(pipe) == before


def _structure(pipe):
    """The pipeline's fingerprint without the scheduler's per-call state (its timesteps are new tensors
    at every call)."""
    from omni.runtime.fingerprint import fingerprint

    return {k: v for k, v in fingerprint(pipe).items() if not k.startswith("scheduler.")}


def _generate(handle, steps):
    result = handle.generate(PROMPT, height=64, width=64, num_inference_steps=steps, guidance_scale=3.5)
    return result.images, _pattern(_hits(result))


def test_state_resets_between_calls_and_undo_restores_the_pipeline(cache_dit):
    import torch
    from diffusers import FluxPipeline

    original_call = FluxPipeline.__call__
    def call(pipe):
        return np.asarray(pipe(prompt=PROMPT, generator=torch.Generator("cpu").manual_seed(0), output_type="np",
                               height=64, width=64, num_inference_steps=12, guidance_scale=3.5).images)

    pipe = omni.run("tiny-flux", num_inference_steps=2).pipe
    uncached = call(pipe)
    cls, before = type(pipe), _structure(pipe)
    handle = omni.optimize(pipe, {"cache": "cache_dit", "cache_dit.residual_diff_threshold": 0.5})
    assert handle.report.result("cache_dit").status == "applied"
    assert FluxPipeline.__call__ is original_call  # cache-dit's class patch stays on a private subclass
    call_cached = call(pipe)
    first, hits1 = _generate(handle, 12)
    second, hits2 = _generate(handle, 12)
    np.testing.assert_array_equal(first, second)  # cache-dit rebuilds its contexts at every call
    assert hits1 == hits2 and "R" in hits1
    longer, hits3 = _generate(handle, 16)  # step count unknown at optimize time: taken from each call
    assert len(hits3) == 16
    assert handle.undo() == []
    assert type(pipe) is cls and FluxPipeline.__call__ is original_call
    np.testing.assert_array_equal(call(pipe), uncached)
    assert _structure(pipe) == before
    assert not np.array_equal(call_cached, uncached)


def test_true_cfg_calls_are_cached_as_separate_branches(cache_dit):
    # shapes: FluxPipeline with true CFG (two denoiser calls per step); cache-dit's Flux adapter
    # assumes one call per step, omni sets enable_separate_cfg per call
    shapes = _hits(_run("shapes", residual_diff_threshold=5.0))
    assert shapes["computed"] + shapes["reused"] == 2 * STEPS
    assert _pattern(shapes).startswith("C" * 8 + "R")  # 4 warmup steps x 2 branches
    # Qwen-Image without a negative prompt runs no CFG although cache-dit's adapter assumes it does
    qwen = _pattern(_hits(_run("tiny-qwenimage", residual_diff_threshold=5.0)))
    assert len(qwen) == STEPS and qwen.startswith("CCCCR")


def test_vllm_omni_keys_map_onto_cache_dit(omni_registry):
    from omni.config import resolve_config

    cfg = resolve_config(omni_registry, {
        "cache_backend": "cache_dit",
        "cache_config": {"Fn_compute_blocks": 2, "Bn_compute_blocks": 1, "max_warmup_steps": 6,
                         "residual_diff_threshold": 0.12, "max_cached_steps": 10, "max_continuous_cached_steps": 2,
                         "enable_taylorseer": True, "taylorseer_order": 2, "scm_steps_mask_policy": "medium",
                         "scm_steps_policy": "static"},
    })
    assert cfg.requested == {"cache_dit": {
        "fn_compute_blocks": 2, "bn_compute_blocks": 1, "max_warmup_steps": 6, "residual_diff_threshold": 0.12,
        "max_cached_steps": 10, "max_continuous_cached_steps": 2, "enable_taylorseer": True, "taylorseer_order": 2,
        "scm_steps_mask_policy": "medium", "scm_steps_policy": "static"}}
    assert "cache_dit" in resolve_config(omni_registry, {"enable_cache_dit": True}).requested
    assert "cache_dit" in resolve_config(omni_registry, {"cache": "cache_dit"}).requested
    # the TeaCache backend keeps its own cache_config keys
    tea = resolve_config(omni_registry, {"cache_backend": "tea_cache", "cache_config": {"rel_l1_thresh": 0.3}})
    assert tea.requested == {"teacache": {"rel_l1_thresh": 0.3}}
    from omni.errors import ConfigError

    with pytest.raises(ConfigError, match="cache_config.Fn_compute_blocks"):
        resolve_config(omni_registry, {"cache_backend": "tea_cache", "cache_config": {"Fn_compute_blocks": 2}})


def test_unavailable_with_a_reason_when_cache_dit_is_absent(omni_registry, monkeypatch):
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.specs import Support

    cell = CompatMatrix(omni_registry, env=Environment(package_overrides={"cache-dit": None})).cell("flux", "cache_dit")
    assert cell.status is Support.UNAVAILABLE
    assert any("cache-dit is not installed" in r for r in cell.reasons)
    old = CompatMatrix(omni_registry, env=Environment(package_overrides={"cache-dit": "1.4.0"})).cell("flux", "cache_dit")
    assert old.status is Support.UNAVAILABLE and any("cache-dit>=1.5" in r for r in old.reasons)
    # the run path reads installed metadata the same way: the run goes on without the cache
    import omni.environment as environment

    real = environment.package_version
    monkeypatch.setattr(environment, "package_version", lambda name: None if name == "cache-dit" else real(name))
    result = _run(steps=2)
    res = result.report.result("cache_dit")
    assert res.status == "skipped" and "cache-dit is not installed" in res.reason
    assert result.report.cache_hits == []


def test_unet_families_are_refused_with_a_reason(omni_registry):
    from omni.matrix import CompatMatrix
    from omni.specs import Support

    matrix = CompatMatrix(omni_registry, env=None)
    for family in ("sd15", "sdxl"):
        cell = matrix.cell(family, "cache_dit")
        assert cell.status is Support.UNSUPPORTED
        assert any("UNet" in r or "denoiser:dit" in r for r in cell.reasons)
    result = omni.run("tiny-sd15", sets={"cache": "cache_dit"}, num_inference_steps=2)
    assert result.report.result("cache_dit").status == "skipped"


def test_vllm_omni_default_config_with_scm_off_runs(cache_dit):
    """vLLM-Omni's documented cache_config writes scm_steps_mask_policy: None for "SCM off"."""
    result = omni.run("tiny-flux", config={"cache_backend": "cache_dit", "cache_config": {
        "Fn_compute_blocks": 1, "Bn_compute_blocks": 0, "max_warmup_steps": 4, "residual_diff_threshold": 0.5,
        "max_continuous_cached_steps": 3, "enable_taylorseer": False, "taylorseer_order": 1,
        "scm_steps_mask_policy": None, "scm_steps_policy": "dynamic"}}, num_inference_steps=STEPS)
    res = result.report.result("cache_dit")
    assert res.status == "applied", res.reason
    assert res.details["steps_computation_mask"] is None and _hits(result)["reused"] > 0
