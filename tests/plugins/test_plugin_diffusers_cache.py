"""diffusers' step caches through omni: hit readers match real executions, contexts for pipelines
without ``cache_context``, identifier traps, the FasterCache first-step guard, refusals, diffusers'
front door vs the functional path, MagCache ratios from the family. Undo, abort and per-request
options of every cache: test_plugin_step_caches.py."""

import numpy as np
import pytest

import omni
from omni.testing import OptimizationConformance
from omni.verify import psnr

STEPS = 12


class TestFirstBlockCache(OptimizationConformance):
    optimization = "first_block_cache"
    run_verification = False


class TestTaylorSeer(OptimizationConformance):
    optimization = "taylorseer_cache"
    run_verification = False


class TestMagCache(OptimizationConformance):
    optimization = "mag_cache"
    run_verification = False


class TestPyramidAttentionBroadcast(OptimizationConformance):
    optimization = "pyramid_attention_broadcast"
    run_verification = False


class TestFasterCache(OptimizationConformance):
    optimization = "faster_cache"
    run_verification = False


_baselines = {}


def _baseline(model):
    if model not in _baselines:
        r = omni.run(model, num_inference_steps=STEPS)
        _baselines[model] = r.images if r.images is not None else r.frames
    return _baselines[model]


def _run(model, method, **options):
    r = omni.run(model, optimize=[method], sets={f"{method}.{k}": v for k, v in options.items()},
                 num_inference_steps=STEPS)
    res = r.report.result(method)
    assert res.status == "applied", res.reason
    return r, (r.images if r.images is not None else r.frames)


def _entry(result):
    (entry,) = result.report.cache_hits
    assert entry["computed"] + entry["reused"] == sum(s["computed"] + s["reused"] for s in entry["steps"])
    return entry


def test_fbc_zero_threshold_is_exact_and_hits_follow_the_threshold():
    r0, out0 = _run("tiny-flux", "first_block_cache", threshold=0.0)
    np.testing.assert_allclose(out0, _baseline("tiny-flux"), atol=1e-6)
    assert _entry(r0)["reused"] == 0 and _entry(r0)["computed"] == STEPS
    lo, _ = _run("tiny-flux", "first_block_cache", threshold=0.4)
    hi, out_hi = _run("tiny-flux", "first_block_cache", threshold=2.0)
    assert 0 < _entry(lo)["reused"] <= _entry(hi)["reused"] < STEPS
    assert _entry(hi)["steps"][0]["computed"] == 1  # the first step always computes
    assert psnr(out_hi, _baseline("tiny-flux")) > 30


def test_fbc_reader_matches_real_tail_block_executions():
    """The per-call flag read from the leader hook's state equals whether the last block really ran."""
    with omni.Engine("tiny-flux", optimize=["first_block_cache"], sets={"first_block_cache.threshold": 0.5},
                     prompt_cache=False) as eng:
        tail = eng.pipe.transformer.single_transformer_blocks[-1]
        ran = []
        # a torch forward hook on an inner Linear fires only when the block really computes (eager mode)
        handle = next(m for m in tail.modules() if type(m).__name__ == "Linear").register_forward_hook(
            lambda *a: ran.append(1))
        result = eng.generate("a red circle", num_inference_steps=STEPS, height=32, width=32)
        handle.remove()
    entry = _entry(result)
    assert entry["reused"] > 0 and entry["computed"] == len(ran)


def test_taylorseer_hooks_wan_attention_where_diffusers_defaults_hook_nothing():
    r, out = _run("tiny-wan", "taylorseer_cache", cache_interval=2, disable_cache_before_step=2)
    details = r.report.result("taylorseer_cache").details["denoisers"]["transformer"]
    assert details["hooked_modules"] > 0 and _entry(r)["reused"] > 0
    assert psnr(out, _baseline("tiny-wan")) > 25
    from diffusers import TaylorSeerCacheConfig
    from diffusers.hooks import apply_taylorseer_cache

    from omni_plugin_diffusers_cache.watch import hooked

    pipe = omni.run("tiny-wan", num_inference_steps=1).pipe
    apply_taylorseer_cache(pipe.transformer, TaylorSeerCacheConfig())  # diffusers' default identifiers
    assert hooked(pipe.transformer, "taylorseer_cache") == []


def test_identifiers_matching_nothing_are_skipped_with_the_reason():
    r = omni.run("tiny-flux", optimize=["taylorseer_cache"], sets={"taylorseer_cache.cache_identifiers": "nothing.*"},
                 num_inference_steps=2)
    res = r.report.result("taylorseer_cache")
    assert res.status == "skipped" and "match no module" in res.reason
    assert not any(hasattr(m, "_diffusers_hook") and m._diffusers_hook.hooks for m in r.pipe.transformer.modules())


@pytest.mark.parametrize("model", ["tiny-sd3", "tiny-sd15"])
def test_pipelines_without_cache_context_get_one(model):
    """SD3/SD pipelines never call cache_context; diffusers' stateful hooks would raise without omni's."""
    r, out = _run(model, "taylorseer_cache", cache_interval=2, disable_cache_before_step=2)
    assert _entry(r)["reused"] > 0 and psnr(out, _baseline(model)) > 25
    again, out2 = _run(model, "taylorseer_cache", cache_interval=2, disable_cache_before_step=2)
    np.testing.assert_array_equal(out, out2)  # state reset between runs


def test_pab_on_a_unet_uses_the_denoiser_timestep():
    r, out = _run("tiny-sd15", "pyramid_attention_broadcast", timestep_skip_start=-1, timestep_skip_end=1001,
                  spatial_attention_block_skip_range=3)
    steps = "".join("R" if s["reused"] else "C" for s in _entry(r)["steps"])
    assert steps.startswith("C") and steps.count("C") == len(range(0, STEPS, 3))
    empty, _ = _run("tiny-sd15", "pyramid_attention_broadcast", timestep_skip_start=2000, timestep_skip_end=3000)
    assert _entry(empty)["reused"] == 0  # window never reached: every call computes


def test_magcache_takes_the_ratios_the_family_declares_and_needs_a_step_count():
    r = omni.run("tiny-wan", optimize=["mag_cache"], num_inference_steps=2)
    assert "the family declares none (extras['mag_cache'])" in r.report.result("mag_cache").reason
    ok, out = _run("tiny-flux", "mag_cache", threshold=0.5, retention_ratio=0.1)
    assert ok.report.result("mag_cache").details["mag_ratios"] == \
        "diffusers.hooks.mag_cache.FLUX_MAG_RATIOS (declared by flux)"
    assert _entry(ok)["reused"] > 0 and psnr(out, _baseline("tiny-flux")) > 25
    pipe = omni.run("tiny-flux", num_inference_steps=1).pipe
    _, report = omni.optimize(pipe, {"optimize": ["mag_cache"]})
    assert "step count" in report.result("mag_cache").reason


@pytest.mark.parametrize("data,message", [
    ({"ratios": "not a name"}, "must name a constant"),
    ({"ratios": [1.0]}, "at least two positive numbers"),
    ({"ratios": [1.0, -2.0]}, "at least two positive numbers"),
    ({"ratio": "FLUX_MAG_RATIOS"}, "unknown key"),
    ({"ratios": 3}, "must be the name of a constant"),
])
def test_magcache_family_data_is_validated_with_the_reason(data, message):
    from omni_plugin_diffusers_cache.facts import mag_cache_traits

    with pytest.raises(ValueError, match=message):
        mag_cache_traits(None, data)
    assert mag_cache_traits(None, {"ratios": "FLUX_MAG_RATIOS"}) == {"mag_cache:ratios"}
    assert mag_cache_traits(None, {"ratios": [1.0, 0.98]}) == {"mag_cache:ratios"}
    assert mag_cache_traits(None, {}) == set()


def test_families_get_the_magcache_trait_from_their_data(omni_registry):
    assert "mag_cache:ratios" in omni_registry.traits("flux")
    assert "mag_cache:ratios" not in omni_registry.traits("wan")
    assert not any("mag_cache" in f for f in omni_registry.findings), omni_registry.findings


@pytest.mark.parametrize("model,method,front_door", [("tiny-flux", "first_block_cache", True),
                                                     ("tiny-sd3", "taylorseer_cache", False)])
def test_cachemixin_denoisers_go_through_enable_cache(model, method, front_door):
    """FluxTransformer2DModel is a CacheMixin: diffusers' enable_cache records the config (and a second
    cache is refused); SD3Transformer2DModel is not: the functional apply_* path."""
    pipe = omni.run(model, num_inference_steps=1).pipe
    handle = omni.optimize(pipe, {"optimize": [method]})
    res = handle.report.result(method)
    assert res.status == "applied", res.reason
    assert res.details["applied_with"] == ("enable_cache" if front_door else f"apply_{method}")
    assert (getattr(pipe.transformer, "_cache_config", None) is not None) is front_door
    if front_door:  # a second cache on the same denoiser is refused before anything changes
        from omni.runtime.fingerprint import fingerprint

        before = fingerprint(pipe)
        second = omni.optimize(pipe, {"optimize": ["pyramid_attention_broadcast"]})
        res = second.report.result("pyramid_attention_broadcast")
        assert res.status == "skipped" and "already has a diffusers cache" in res.reason
        assert fingerprint(pipe) == before
    handle.undo()
    assert getattr(pipe.transformer, "_cache_config", None) is None


def test_faster_cache_first_call_guard():
    """With the window covering the first timestep, diffusers reuses an empty cache; omni's guard computes."""
    r, out = _run("tiny-flux", "faster_cache", attention_timestep_skip_end=1001)
    assert _entry(r)["reused"] > 0 and _entry(r)["steps"][0]["computed"] == 1
    from diffusers import FasterCacheConfig
    from diffusers.hooks import apply_faster_cache

    pipe = omni.run("tiny-flux", num_inference_steps=1).pipe
    apply_faster_cache(pipe.transformer, FasterCacheConfig(
        spatial_attention_timestep_skip_range=(-1, 1001), is_guidance_distilled=True, tensor_format="BCHW",
        current_timestep_callback=lambda: pipe.current_timestep))
    with pytest.raises(TypeError):
        pipe("a", num_inference_steps=3, height=32, width=32)


def test_faster_cache_approximates_the_unconditional_half_of_sd3_batched_cfg():
    res, out = _run("tiny-sd3", "faster_cache", attention_timestep_skip_end=1001, unconditional_timestep_skip_end=1001)
    details = res.report.result("faster_cache").details["denoisers"]["transformer"]
    assert details["unconditional_branch_approximated"] is True
    assert _entry(res)["reused"] > 0 and psnr(out, _baseline("tiny-sd3")) > 20


def test_block_caches_refuse_sd3_and_unets_before_loading():
    for model, method in [("tiny-sd3", "first_block_cache"), ("tiny-sdxl", "mag_cache"), ("tiny-sd15", "faster_cache")]:
        r = omni.run(model, optimize=[method], num_inference_steps=1)
        assert r.report.result(method).status == "skipped", (model, method)


def test_caches_are_mutually_exclusive():
    from omni.runtime.session import prepare

    prep = prepare("tiny-flux", optimize=["teacache", "first_block_cache"])
    by = {r.name: r for r in prep.report.config_resolved}
    assert by["first_block_cache"].status == "skipped" and "conflicts with teacache" in by["first_block_cache"].reason


def test_vllm_omni_magcache_keys_resolve(omni_registry):
    from omni.config import resolve_config

    cfg = resolve_config(omni_registry, {"cache_backend": "mag_cache", "cache_config": {"mag_threshold": 0.1,
                                                                                         "mag_max_skip_steps": 2}})
    assert cfg.requested == {"mag_cache": {"threshold": 0.1, "max_skip_steps": 2}}


@pytest.mark.parametrize("method", ["pyramid_attention_broadcast", "faster_cache"])
def test_separate_cfg_calls_keep_separate_attention_state(method):
    """Wan runs cond and uncond as two denoiser calls per step; with one shared hook.state the uncond
    call would reuse the cond call's attention (computed/reused alternating inside every step)."""
    model, options = ("tiny-wan", {"timestep_skip_start": -1, "timestep_skip_end": 1001}) \
        if method == "pyramid_attention_broadcast" else ("shapes", {"attention_timestep_skip_end": 1001})
    r = omni.run(model, optimize=[method], sets={f"{method}.{k}": v for k, v in options.items()},
                 num_inference_steps=STEPS)
    entry = _entry(r)
    assert entry["reused"] > 0
    assert all(s["computed"] in (0, 2) for s in entry["steps"]), entry["steps"]


@pytest.mark.parametrize("method,options", [("first_block_cache", {"threshold": 0.4}),
                                            ("pyramid_attention_broadcast", {"timestep_skip_start": -1,
                                                                             "timestep_skip_end": 1001})])
def test_hit_readers_work_under_regional_compile(method, options):
    sets = {f"{method}.{k}": v for k, v in options.items()}
    eager, out = _run("tiny-flux", method, **options)
    compiled = omni.run("tiny-flux", optimize=[method, "compile"], sets={**sets, "compile.backend": "aot_eager"},
                        num_inference_steps=STEPS)
    assert compiled.report.result("compile").status == "applied"
    assert _entry(compiled)["steps"] == _entry(eager)["steps"] and _entry(eager)["reused"] > 0
    np.testing.assert_allclose(compiled.images, out, atol=1e-5)


def test_magcache_calibration_gives_a_family_without_ratios_magcache():
    calib = omni.run("tiny-wan", optimize=["mag_cache"], sets={"mag_cache.calibrate": True},
                     num_inference_steps=STEPS)
    np.testing.assert_array_equal(calib.frames, _baseline("tiny-wan"))  # calibration skips nothing
    ratios = calib.report.result("mag_cache").details["calibrated_mag_ratios"]
    assert set(ratios) == {"cond", "uncond"} and len(ratios["cond"]) == STEPS and ratios["cond"][0] == 1.0
    r, out = _run("tiny-wan", "mag_cache", mag_ratios=",".join(map(str, ratios["cond"])), threshold=0.5,
                  retention_ratio=0.1)
    assert _entry(r)["reused"] > 0 and psnr(out, _baseline("tiny-wan")) > 25
