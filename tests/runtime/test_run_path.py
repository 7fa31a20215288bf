"""omni.run / omni.optimize: plan execution, rollback rule, strict mode, report schema."""

import jsonschema
import numpy as np
import pytest

import omni
from omni.errors import ConfigError, OptimizationFailed, StrictRefusal
from omni.runtime.report import schema


@pytest.fixture(scope="module")
def baseline():
    return omni.run("tiny-flux", seed=3).images


def test_plain_run_report_validates_against_schema(baseline):
    result = omni.run("tiny-flux", seed=3)
    np.testing.assert_array_equal(result.images, baseline)
    data = result.report.to_dict()
    jsonschema.validate(data, schema())
    assert data["family"] == "flux" and len(data["timings"]["steps"]) == 4
    assert data["device_placement"]["transformer"]["device"] == "cpu"
    assert data["memory"]["param_bytes"]["transformer"]["before"] > 0


def test_applied_option_flows_from_config_key(registry, baseline):
    result = omni.run("tiny-flux", seed=3, config={"enable_scale": True, "scale_factor": 0.5}, registry=registry)
    res = result.report.result("scale_noise")
    assert (res.status, res.options["factor"], res.requested_by) == ("applied", 0.5, "enable_scale")
    assert not np.allclose(result.images, baseline)
    jsonschema.validate(result.report.to_dict(), schema())


def test_failing_optimization_that_changed_nothing_is_reported_and_run_continues(registry, baseline):
    result = omni.run("tiny-flux", seed=3, optimize=["breaks_cleanly"], registry=registry)
    res = result.report.result("breaks_cleanly")
    assert res.status == "failed" and "RuntimeError: nothing to hook; pipeline unchanged" == res.reason
    np.testing.assert_array_equal(result.images, baseline)  # output identical to unoptimized


def test_failing_optimization_that_modified_the_pipeline_stops_the_run(registry):
    with pytest.raises(OptimizationFailed, match="breaks_dirty failed .*after modifying the pipeline"):
        omni.run("tiny-flux", optimize=["breaks_dirty"], registry=registry)


def test_runtime_skip_is_reported_and_strict_refuses_it(registry):
    result = omni.run("tiny-flux", optimize=["skips_at_runtime"], registry=registry)
    assert result.report.result("skips_at_runtime").reason == "no VAE feature for this test"
    with pytest.raises(StrictRefusal):
        omni.run("tiny-flux", optimize=["skips_at_runtime"], strict=True, registry=registry)


def test_strict_refuses_before_loading_weights(registry, monkeypatch):
    import omni.loading

    def explode(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(omni.loading, "load_diffusers", explode)
    with pytest.raises(StrictRefusal, match="unet_only cannot be applied to flux .*lacks trait"):
        omni.run("tiny-flux", optimize=["unet_only"], strict=True, registry=registry)


def test_skipped_cells_and_conflicts_are_explained(registry):
    result = omni.run("tiny-flux", optimize=["unet_only", "cache_one", "cache_two"], registry=registry)
    by = {r.name: r for r in result.report.config_resolved}
    assert by["unet_only"].status == "skipped" and "lacks trait(s) denoiser:unet" in by["unet_only"].reason
    assert by["cache_two"].status == "skipped" and by["cache_two"].reason.startswith("conflicts with cache_one")
    assert by["cache_one"].status == "applied" and by["cache_one"].reason == "applied; cell is untested"


def test_unknown_key_and_bad_value_are_rejected(registry):
    with pytest.raises(ConfigError, match="unknown config key 'scale_factr' \\(did you mean scale_factor"):
        omni.run("tiny-flux", config={"scale_factr": 2}, registry=registry)
    with pytest.raises(ConfigError, match="config key scale_factor: -1.0 is below the minimum 0.0"):
        omni.run("tiny-flux", config={"enable_scale": True, "scale_factor": -1}, registry=registry)


def _tiny_pipe(registry):
    from diffusers import DiffusionPipeline

    from omni.behaviour import resolve

    spec = registry.model("tiny-flux").spec
    pipe = DiffusionPipeline.from_pretrained(str(resolve(spec.build)()), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_optimize_returns_the_same_pipeline_object_and_a_handle(registry):
    pipe = _tiny_pipe(registry)
    handle = omni.optimize(pipe, {"enable_scale": True}, registry=registry)
    same, report = handle
    assert same is pipe and handle.pipe is pipe and report.result("scale_noise").status == "applied"
    assert not hasattr(pipe, "_omni_context")
    assert report.result("scale_noise").details["reversible"] is True
    assert handle.undo() == []
    assert not pipe.transformer._forward_hooks


def test_progress_callback_gets_every_step():
    seen = []
    omni.run("tiny-flux", progress=lambda done, total: seen.append((done, total)), num_inference_steps=3)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_optimize_refuses_a_string_where_a_list_belongs(registry):
    from omni.errors import UsageError

    with pytest.raises(UsageError, match=r"optimize must be a list of names, e.g. optimize=\['vae_tiling'\]"):
        omni.run("tiny-flux", optimize="vae_tiling", registry=registry)
    with pytest.raises(UsageError, match="config must be a mapping"):
        omni.run("tiny-flux", config=["x"], registry=registry)
