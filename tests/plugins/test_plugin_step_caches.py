"""What every step cache (TeaCache, diffusers' five, cache-dit) owes the kernel: an undo that gives the
baseline output and pipeline back, a reset after an aborted generation, and per-request options that
change the behaviour of one request only."""

import numpy as np
import pytest

import omni

STEPS = 8
PROMPT = "a red circle on a blue background"

# method -> (model, options that make it reuse on that model)
CASES = {
    "teacache": ("tiny-flux", {"rel_l1_thresh": 1.0}),
    "first_block_cache": ("tiny-flux", {"threshold": 0.5}),
    "taylorseer_cache": ("tiny-flux", {"cache_interval": 2, "disable_cache_before_step": 1}),
    "mag_cache": ("tiny-flux", {"threshold": 0.5, "retention_ratio": 0.1, "num_inference_steps": STEPS}),
    "pyramid_attention_broadcast": ("tiny-flux", {"timestep_skip_start": -1, "timestep_skip_end": 1001}),
    "faster_cache": ("tiny-flux", {"attention_timestep_skip_end": 1001}),
    "cache_dit": ("tiny-flux", {"residual_diff_threshold": 0.5, "max_warmup_steps": 2}),
}
# the functional path of diffusers' caches: denoisers that are no CacheMixin
FUNCTIONAL = {
    "taylorseer_cache@tiny-sd3": ("tiny-sd3", CASES["taylorseer_cache"][1]),
    "pyramid_attention_broadcast@tiny-sd15": ("tiny-sd15", CASES["pyramid_attention_broadcast"][1]),
}


def _needs(method):
    if method == "cache_dit":
        pytest.importorskip("cache_dit")


def _sets(method, options):
    return {f"{method}.{k}": v for k, v in options.items()}


def _generation(model):
    from omni.plugins import get_registry

    return {**dict(get_registry().model(model).spec.default_generation), "num_inference_steps": STEPS}


def _entry(result, method):
    (entry,) = [e for e in result.report.cache_hits if e["method"] == method]
    return entry


def _pattern(result, method):
    return "".join("R" * s["reused"] + "C" * s["computed"] for s in _entry(result, method)["steps"])


def _structure(pipe):
    """The pipeline's fingerprint without the scheduler's per-call state (new timestep tensors each call)."""
    from omni.runtime.fingerprint import fingerprint

    return {k: v for k, v in fingerprint(pipe).items() if not k.startswith("scheduler.")}


@pytest.mark.parametrize("case", [*CASES, *FUNCTIONAL])
def test_undo_gives_the_baseline_output_and_pipeline_back(case):
    method = case.split("@")[0]
    model, options = FUNCTIONAL.get(case) or CASES[case]
    _needs(method)
    args = _generation(model)
    base = omni.run(model, PROMPT, seed=0, **args)
    pipe = base.pipe
    before = _structure(pipe)
    handle = omni.optimize(pipe, optimize=[method], sets=_sets(method, options))
    res = handle.report.result(method)
    assert res.status == "applied" and res.details["reversible"] is True, res.reason
    cached = handle.generate(PROMPT, seed=0, **args)
    assert _entry(cached, method)["reused"] > 0
    assert not np.array_equal(cached.output, base.output)
    assert handle.undo() == []
    after = handle.generate(PROMPT, seed=0, **args)
    np.testing.assert_array_equal(after.output, base.output)
    assert after.report.cache_hits == []
    assert _structure(pipe) == before


@pytest.mark.parametrize("method", list(CASES))
def test_an_aborted_generation_leaves_no_cache_state_behind(method):
    """Cancel a request at step 3, then a request gives the output it gets on a fresh engine. (The
    cancelled request differs, so that stale state would show: the first steps of an identical request
    leave the state an identical request would build.)"""
    from omni.runtime.engine import JobCancelled

    _needs(method)
    model, options = CASES[method]
    request = {"prompt": PROMPT, "seed": 1, "num_inference_steps": STEPS}  # the model's defaults otherwise
    with omni.Engine(model, optimize=[method], sets=_sets(method, options)) as engine:
        fresh = engine.generate(**request)  # the first request of a fresh engine
        stopped = []

        def stop(job, event, data):
            if event == "step" and data["step"] == 3 and not stopped:
                stopped.append(job.id)
                job.cancel()

        engine.listeners.append(stop)
        job = engine.submit(**{**request, "prompt": "a green square", "seed": 2})
        with pytest.raises(JobCancelled):
            job.result(timeout=300)
        assert job.status == "cancelled" and job.steps_ran == 3
        again = engine.generate(**request)
    np.testing.assert_array_equal(again.output, fresh.output)
    assert _pattern(again, method) == _pattern(fresh, method) and "R" in _pattern(fresh, method)


# method -> (load-time options, per-request options that reuse more)
PER_REQUEST = {
    "teacache": ({}, {"rel_l1_thresh": 5.0}),
    "first_block_cache": ({}, {"threshold": 2.0}),
    "taylorseer_cache": ({"cache_interval": 1, "disable_cache_before_step": 1}, {"cache_interval": 3}),
    "mag_cache": ({"num_inference_steps": STEPS}, {"threshold": 0.5, "retention_ratio": 0.1}),
    "pyramid_attention_broadcast": ({"timestep_skip_start": 2000, "timestep_skip_end": 3000},
                                    {"timestep_skip_start": -1, "timestep_skip_end": 1001}),
    "faster_cache": ({"attention_timestep_skip_end": 0}, {"attention_timestep_skip_end": 1001}),
    "cache_dit": ({}, {"residual_diff_threshold": 5.0}),
}


@pytest.mark.parametrize("method", list(PER_REQUEST))
def test_per_request_options_change_one_request_only(method):
    _needs(method)
    model = CASES[method][0]
    load, override = PER_REQUEST[method]
    request = {"prompt": PROMPT, "seed": 0, "num_inference_steps": STEPS}
    with omni.Engine(model, optimize=[method], sets=_sets(method, load)) as engine:
        first = engine.generate(**request)
        changed = engine.generate(**request, options=_sets(method, override))
        back = engine.generate(**request)
    assert _entry(changed, method)["reused"] > _entry(first, method)["reused"]
    assert changed.report.result(method).options.items() >= override.items()
    assert _pattern(back, method) == _pattern(first, method)
    np.testing.assert_array_equal(back.output, first.output)
    assert back.report.result(method).options == first.report.result(method).options


def test_options_that_need_a_reload_are_refused_per_request():
    from omni.sdk import FieldError

    with omni.Engine("tiny-flux", optimize=["teacache"]) as engine:
        with pytest.raises(FieldError, match="needs a reload"):
            engine.submit(PROMPT, options={"teacache.coefficients": [0, 0, 0, 1, 0]})
