"""Rollback that cannot lie: a step that changed the pipeline and then failed (raised, raised Skip, or returned
something that is not Applied) stops the run, whatever it changed; a step that undid its own change goes on with
the baseline output; omni.optimize undoes what it applied when a later step fails."""

import numpy as np
import pytest

import omni
from omni.errors import OptimizationFailed, StrictRefusal


@pytest.fixture(scope="module")
def baseline():
    return omni.run("tiny-flux", seed=3).images


@pytest.mark.parametrize(
    "name, change",
    [
        ("scales_in_place_then_raises", "transformer.* written in place"),
        ("wraps_decode_then_raises", "vae.decode added"),
        ("swaps_scheduler_then_raises", "scheduler"),
        ("changes_attribute_then_raises", "pipeline.vae_scale_factor changed"),
        ("changes_then_skips", "pipeline.vae_scale_factor changed"),
        ("changes_then_returns_none", "pipeline.vae_scale_factor changed"),
    ],
)
def test_a_change_followed_by_a_failure_stops_the_run(registry, name, change):
    with pytest.raises(OptimizationFailed, match=f"{name} .*after modifying the pipeline .*{change}"):
        omni.run("tiny-flux", seed=3, optimize=[name], registry=registry)


def test_skip_after_a_change_is_reported_as_a_failure_not_a_skip(registry):
    with pytest.raises(OptimizationFailed, match="changes_then_skips skipped \\(changed my mind\\) after modifying"):
        omni.run("tiny-flux", optimize=["changes_then_skips"], registry=registry)


def test_registered_undo_runs_and_the_run_goes_on_with_the_baseline(registry, baseline):
    result = omni.run("tiny-flux", seed=3, optimize=["undoes_its_change_then_raises"], registry=registry)
    res = result.report.result("undoes_its_change_then_raises")
    assert res.status == "failed"
    assert res.reason == ("RuntimeError: failed, but registered its undo; pipeline unchanged (its undo actions ran; restored "
                          "values checked on samples)")
    np.testing.assert_array_equal(result.images, baseline)


def test_reversible_means_has_an_undo(registry):
    result = omni.run("tiny-flux", optimize=["irreversible", "scale_noise"], registry=registry)
    assert result.report.result("irreversible").details["reversible"] is False
    assert result.report.result("scale_noise").details["reversible"] is True


def _tiny_pipe(registry):
    from diffusers import DiffusionPipeline

    from omni.behaviour import resolve

    pipe = DiffusionPipeline.from_pretrained(str(resolve(registry.model("tiny-flux").spec.build)()),
                                             local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe):
    import torch

    return pipe(prompt="a red circle on a blue background", generator=torch.Generator("cpu").manual_seed(3),
                output_type="np", height=64, width=64, num_inference_steps=4, guidance_scale=3.5,
                max_sequence_length=32).images


def test_optimize_undoes_what_it_applied_when_a_later_step_fails(registry):
    pipe = _tiny_pipe(registry)
    before = _generate(pipe)
    # scale_noise (cache stage, with an undo) applies; skips_at_runtime (decode stage) then refuses under --strict
    with pytest.raises(StrictRefusal) as err:
        omni.optimize(pipe, {"optimize": ["scale_noise", "skips_at_runtime"]}, strict=True, registry=registry)
    assert "undone in reverse order: scale_noise" in str(err.value)
    assert not pipe.transformer._forward_hooks
    np.testing.assert_array_equal(_generate(pipe), before)


def test_optimize_names_what_could_not_be_undone(registry):
    pipe = _tiny_pipe(registry)
    with pytest.raises(OptimizationFailed) as err:
        omni.optimize(pipe, {"optimize": ["irreversible", "scales_in_place_then_raises"]}, registry=registry)
    assert "could not be undone: irreversible: has no undo" in str(err.value)


def test_steps_a_failed_load_never_reached_are_not_left_planned(registry):
    from omni.runtime.session import prepare

    prep = prepare("tiny-flux", {"optimize": ["breaks_dirty", "scale_noise"]}, registry=registry)
    with pytest.raises(OptimizationFailed):
        omni.Engine(None, prepared=prep)
    statuses = {r.name: r.status for r in prep.report.config_resolved}
    assert statuses == {"breaks_dirty": "failed", "scale_noise": "skipped"}
    assert "the run stopped first" in prep.report.result("scale_noise").reason
