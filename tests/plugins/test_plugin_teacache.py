"""TeaCache: decisions, per-step hits, state reset, family data, calibration (honest about random
weights: it serves only its own model unless the user names the file)."""

import json

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
    assert high.report.result("teacache").details["coefficients_source"].startswith("TeaCache4FLUX")


def test_interval_forces_computes_and_state_resets_between_runs():
    cfg = {"cache": "tea_cache", "tea_cache_ratio": 5.0, "tea_cache_interval": 3}
    first = omni.run("tiny-flux", sets=cfg, num_inference_steps=10)
    assert "RRR" not in _hits(first)
    result = omni.run("tiny-flux", sets=cfg, num_inference_steps=10)
    np.testing.assert_array_equal(first.images, result.images)  # fresh state each run


def test_vllm_omni_keys_map_onto_teacache(omni_registry):
    from omni.config import resolve_config

    cfg = resolve_config(omni_registry, {"cache_backend": "tea_cache", "cache_config": {"rel_l1_thresh": 0.3}})
    assert cfg.requested == {"teacache": {"rel_l1_thresh": 0.3}}


# ---------------------------------------------------------------------------- family data and traits
def _family(name="acme", **extras):
    from omni.sdk import FamilyFacts, FamilySpec

    return FamilySpec(name=name, summary="test family", pipelines=("AcmePipeline",), extras=extras,
                      facts=FamilyFacts(denoiser="dit", denoiser_components=("transformer",), modality="image",
                                        tasks=("t2i",), guidance="cfg", block_attrs=("transformer_blocks",)))


@pytest.mark.parametrize("data,message", [
    ({"probe": "nowhere", "coefficients": [1, 2, 3, 4, 5], "source": "x"}, "probe 'nowhere' is not one of"),
    ({"probe": "flux-norm1", "coefficients": [1, 2, 3], "source": "x"}, "must be 5 numbers"),
    ({"probe": "flux-norm1", "coefficients": [1, 2, 3, 4, 5]}, "'source' must say where"),
    ({"probe": "flux-norm1", "coeficients": [1, 2, 3, 4, 5]}, "unknown key"),
])
def test_family_data_is_validated_with_the_reason(data, message, tmp_path, monkeypatch):
    from omni_plugin_teacache.facts import family_traits

    monkeypatch.setenv("OMNI_TEACACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        family_traits(_family(), data)


def test_family_traits_come_from_published_data_or_a_calibration(tmp_path, monkeypatch):
    from omni_plugin_teacache.facts import family_traits

    monkeypatch.setenv("OMNI_TEACACHE_DIR", str(tmp_path))
    published = {"probe": "flux-norm1", "coefficients": (1.0, 2.0, 3.0, 4.0, 5.0), "source": "a paper"}
    assert family_traits(_family(), published) == {"teacache:coefficients", "teacache:probe"}
    assert family_traits(_family(), {"probe": "block0-input"}) == {"teacache:probe"}
    assert family_traits(_family(), {}) == set()
    (tmp_path / "acme--tiny-acme.json").write_text(json.dumps(
        {"family": "acme", "probe": "block0-input", "coefficients": [0, 0, 0, 1, 0], "model": "tiny-acme",
         "weights": "random"}))
    assert family_traits(_family(), {}) == {"teacache:coefficients", "teacache:probe"}


def test_the_store_lives_in_omnis_cache_dir_unless_overridden(tmp_path, monkeypatch):
    from omni_plugin_teacache import store

    monkeypatch.delenv("OMNI_TEACACHE_DIR", raising=False)
    monkeypatch.setenv("OMNI_CACHE_DIR", str(tmp_path / "cache"))
    assert store.store_dir() == tmp_path / "cache" / "teacache"
    monkeypatch.setenv("OMNI_TEACACHE_DIR", str(tmp_path / "elsewhere"))
    assert store.store_dir() == tmp_path / "elsewhere"


def test_the_calibration_hint_shows_only_where_calibration_can_work(omni_registry):
    from omni.matrix import CompatMatrix

    matrix = CompatMatrix(omni_registry, env=None)
    sd3 = " ".join(matrix.cell("sd3", "teacache").reasons)
    assert "omni calibrate teacache MODEL" in sd3
    sd15 = " ".join(matrix.cell("sd15", "teacache").reasons)  # a UNet: calibration cannot give it TeaCache
    assert "denoiser:dit" in sd15 and "calibrate" not in sd15


# ---------------------------------------------------------------------------- calibration
def _calibrate(model, tmp_path, steps):
    """``omni calibrate teacache MODEL --json`` through the plugin's own command."""
    import typer
    from typer.testing import CliRunner

    from omni_plugin_teacache.cli import register

    app = typer.Typer()
    app.command("noop")(lambda: None)  # a group, so that "calibrate" is a subcommand
    register(app)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle on a blue background\na green square on a white background\n")
    out = CliRunner().invoke(app, ["calibrate", "teacache", model, "--prompts", str(prompts), "--steps", str(steps),
                                   "--json"])
    assert out.exit_code == 0, (out.output, out.exception)
    return json.loads(out.stdout), out.stderr


def _fresh_registry():
    from omni.plugins import Selection, load_registry

    return load_registry(selection=Selection(), strict=False)


def test_calibration_on_random_weights_says_so_and_serves_only_its_model(tmp_path, monkeypatch):
    from omni.matrix import CompatMatrix

    monkeypatch.setenv("OMNI_TEACACHE_DIR", str(tmp_path))
    before = CompatMatrix(_fresh_registry(), env=None).cell("sd3", "teacache")
    assert before.status.value == "unsupported"
    data, stderr = _calibrate("tiny-sd3", tmp_path, steps=6)
    assert data["family"] == "sd3" and data["probe"] == "block0-input" and len(data["coefficients"]) == 5
    assert data["weights"] == "random" and data["model"] == "tiny-sd3" and data["points"] >= 5
    assert "RANDOM weights (tiny-sd3)" in stderr and "teacache.calibration=" in stderr
    path = data["path"]
    assert json.loads(open(path).read())["weights"] == "random"

    registry = _fresh_registry()
    cell = CompatMatrix(registry, env=None).cell("sd3", "teacache")
    assert cell.status.value == "untested"  # a calibration never claims supported
    # the calibrated model itself gets TeaCache
    run = omni.run("tiny-sd3", optimize=["teacache"], sets={"teacache.rel_l1_thresh": 0.5}, num_inference_steps=10,
                   registry=registry)
    res = run.report.result("teacache")
    assert res.status == "applied", res.reason
    assert "fitted on this model" in res.details["coefficients_source"] and run.report.cache_hits[0]["reused"] > 0
    # another model of the family (here: a pipeline object) does not, unless the user insists
    pipe = omni.run("tiny-sd3", num_inference_steps=1, registry=registry).pipe
    skipped = omni.optimize(pipe, {"optimize": ["teacache"]}, registry=registry)
    res = skipped.report.result("teacache")
    assert res.status == "skipped" and path in res.reason and f"teacache.calibration={path}" in res.reason
    insisted = omni.optimize(pipe, {"optimize": ["teacache"], "teacache.calibration": path}, registry=registry)
    res = insisted.report.result("teacache")
    assert res.status == "applied" and res.details["coefficients"] == data["coefficients"]
    insisted.undo()


def test_calibration_of_a_family_with_published_coefficients_serves_the_calibrated_model(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNI_TEACACHE_DIR", str(tmp_path))
    data, _ = _calibrate("tiny-flux", tmp_path, steps=8)
    assert data["family"] == "flux" and data["probe"] == "flux-norm1" and data["points"] >= 10
    registry = _fresh_registry()
    from omni.matrix import CompatMatrix

    cell = CompatMatrix(registry, env=None).cell("flux", "teacache")
    assert cell.reasons == ("verified: omni verify (published coefficients)",)  # no claim from the calibration
    result = omni.run("tiny-flux", optimize=["teacache"], registry=registry, num_inference_steps=4)
    details = result.report.result("teacache").details
    assert details["coefficients"] == data["coefficients"] and "fitted on this model" in details["coefficients_source"]
    # other flux models keep the published coefficients
    pipe = omni.run("tiny-flux", num_inference_steps=1, registry=registry).pipe
    other = omni.optimize(pipe, {"optimize": ["teacache"]}, registry=registry)
    assert other.report.result("teacache").details["coefficients_source"].startswith("TeaCache4FLUX")
    other.undo()


def test_bad_calibration_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"family": "flux"}')
    from omni.sdk import UsageError

    with pytest.raises(UsageError, match="lacks probe, coefficients"):
        omni.run("tiny-flux", sets={"cache": "tea_cache", "teacache.calibration": str(bad)})
    other = tmp_path / "wan.json"
    other.write_text(json.dumps({"family": "wan", "probe": "wan-time-modulation", "coefficients": [0, 0, 0, 1, 0]}))
    with pytest.raises(UsageError, match="fitted for family wan, not flux"):
        omni.run("tiny-flux", sets={"cache": "tea_cache", "teacache.calibration": str(other)})


def test_optimizing_a_pipeline_that_already_ran_keeps_per_context_state():
    """diffusers caches the child-registry list on the first cache_context; hooks added later must
    still receive the pipeline's "cond"/"uncond" contexts (true CFG on Qwen-Image)."""
    pipe = omni.run("tiny-qwenimage", num_inference_steps=2).pipe  # has run: registry caches are built
    handle = omni.optimize(pipe, {"cache": "tea_cache", "tea_cache_ratio": 0.5})
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
    handle.undo()


def test_a_trained_calibration_of_the_generic_family_serves_only_its_own_model(tmp_path, monkeypatch):
    """A fit on trained weights serves a whole family (test above) — but not the catch-all generic family,
    whose members are unrelated pipelines: there a calibration serves only the model it was fitted on."""
    from omni.sdk import Skip, registry
    from omni_plugin_teacache import store
    from omni_plugin_teacache.impl import resolve_coefficients

    monkeypatch.setenv("OMNI_TEACACHE_DIR", str(tmp_path))
    coefficients = [1.0, -2.0, 3.0, 0.5, 0.01]
    for family in ("generic", "flux"):
        store.file_for(family, "/models/a").write_text(json.dumps(
            {"family": family, "probe": "block0-input", "coefficients": coefficients, "weights": "trained",
             "model": "/models/a"}))
    generic, flux = registry().family("generic").spec, registry().family("flux").spec
    assert generic.catch_all and not flux.catch_all
    coeffs, _, source = resolve_coefficients({}, generic, "/models/a")
    assert list(coeffs) == coefficients and "fitted on this model" in source
    with pytest.raises(Skip, match="groups unrelated pipelines"):
        resolve_coefficients({}, generic, "/models/b")
    coeffs, _, source = resolve_coefficients({}, flux, "/models/b")  # a named family: the trained fit serves it
    assert list(coeffs) == coefficients and "fitted on trained weights" in source
