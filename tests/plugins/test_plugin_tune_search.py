"""omni tune's search measured on tiny models (one process per configuration): conflicts respected,
the quality floor respected, the memory budget respected, the time limit respected, measurements
reused from the profile, and the profile accepted unchanged by ``omni run`` / ``omni serve``."""

import json
import time

import pytest

from omni.sdk import registry
from omni_plugin_tune.tune import TuneArgs, run_tune

CACHES = {"teacache", "first_block_cache", "mag_cache", "taylorseer_cache", "pyramid_attention_broadcast",
          "faster_cache", "cache_dit"}
SPACE = ["fuse_qkv", "teacache", "first_block_cache"]


def args(output, **kw):
    base = dict(model="tiny-flux", steps=4, threads=1, final_pairs=0, only=SPACE, min_psnr=30.0, output=str(output))
    return TuneArgs(**{**base, **kw})


def names(config):
    return [item if isinstance(item, str) else next(iter(item)) for item in config.get("optimize", [])]


def compared(result) -> bool:
    """Whether the finalists were timed side by side. On a loaded box no cache may beat the baseline
    measurably, and the search keeps the baseline alone: then the result says there was nothing to
    compare (and has no comparison rows) instead."""
    if result["comparison"]:
        return True
    assert any("nothing to compare" in n for n in result["notes"]), result["notes"]
    return False


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "profile.yaml"
    messages = []
    result = run_tune(args(out, final_pairs=2), messages.append)
    return result, out, messages


def test_no_candidate_holds_two_step_caches_and_the_chosen_one_keeps_the_floor(tuned):
    result, out, messages = tuned
    trials = result["all_trials"]
    assert trials and all(sum(n in CACHES for n in names(t["config"])) <= 1 for t in trials)
    chosen = result["chosen"]
    assert chosen is not None and (chosen["identical"] or chosen["psnr_db"] >= 30)
    for t in trials:
        if t["status"] == "ok" and not t["identical"] and t["psnr_db"] < 30:
            assert any(r["label"] == t["label"] and "PSNR" in r["reason"] for r in result["rejected"])
    # the knob is searched, not swept: a binary search over the 7-value grid
    thresholds = {t["options"]["teacache.rel_l1_thresh"] for t in trials if "teacache.rel_l1_thresh" in t["options"]}
    assert 1 <= len(thresholds) <= 5
    assert any(m.startswith("baseline: ") for m in messages)
    if compared(result):
        assert all(row["samples"] == 2 for row in result["comparison"]), messages


def test_the_profile_is_a_config_omni_run_and_serve_accept_unchanged(tuned):
    import omni
    from omni.config import load_yaml
    from omni.sdk import engine_options
    from omni.runtime.session import prepare

    result, out, _ = tuned
    data = load_yaml(str(out))
    assert set(data) == {"optimize", "metadata"} and data["metadata"]["device"]["kind"] == "cpu"
    assert set(prepare("tiny-flux", data, registry=registry()).plan.names()) == set(names(result["config"]))
    with omni.Engine("tiny-flux", **engine_options(config=str(out)), prompt_cache=False) as engine:
        report = engine.generate("a red circle", num_inference_steps=2).report
    applied = sorted(r.name for r in report.config_resolved if r.status == "applied")
    assert applied == sorted(names(result["config"]))
    assert not any("tuned on" in n for n in report.notes)  # same device: no note


def test_rerunning_with_the_same_inputs_reuses_the_recorded_measurements(tuned):
    result, out, _ = tuned
    messages = []
    again = run_tune(args(out, final_pairs=2), messages.append)
    assert again["trials"]["measured"] == 0 and again["trials"]["reused"] == again["trials"]["total"]
    assert again["chosen"]["label"] == result["chosen"]["label"]
    assert any("recorded in the profile" in m for m in messages)
    if compared(result):  # the same finalists: their side-by-side timing is reused too
        assert any("side-by-side timing recorded in the profile" in m for m in messages)


def test_a_budget_nothing_fits_writes_no_profile_and_names_the_lightest(tuned, tmp_path):
    result, out, _ = tuned
    before = out.read_text()
    tight = run_tune(args(out, budget_memory="1MiB"))
    assert tight["chosen"] is None and "profile" not in tight
    assert "the lightest that kept the floor was" in tight["notes"][-1]
    assert out.read_text() == before


def test_the_chosen_configuration_fits_the_budget(tuned):
    result, out, _ = tuned
    ok = [t for t in result["all_trials"] if t["status"] == "ok" and (t["identical"] or t["psnr_db"] >= 30)]
    budget = min(t["peak_memory_bytes"] for t in ok)
    fitted = run_tune(args(out, budget_memory=str(budget)))
    assert fitted["chosen"] is not None and fitted["chosen"]["peak_memory_bytes"] <= budget
    over = [row for row in fitted["front"] if row["peak_memory_bytes"] > budget]
    assert all(not row["acceptable"] for row in over)
    assert all(row["peak_memory_bytes"] <= budget for row in fitted["comparison"] if row["label"] == fitted["chosen"]["label"])
    for row in fitted["rejected"]:
        if row["status"] == "ok" and "budget" in row["reason"]:
            assert f"> budget {budget / 2**20:.0f} MiB" in row["reason"]


def test_a_lossless_floor_keeps_lossy_optimizations_out(tuned):
    result, out, _ = tuned
    lossless = run_tune(args(out, min_psnr=None, quality="lossless"))
    assert all(registry().optimization(n).spec.lossless for n in names(lossless["config"]))
    assert lossless["chosen"]["identical"] or lossless["chosen"]["psnr_db"] is None
    assert {"optimization": "teacache", "reason": "lossy, and the quality floor is lossless"} in lossless["left_out"]


def test_the_time_limit_stops_the_search_with_the_best_so_far(tuned, tmp_path):
    limit = 6.0
    t0 = time.monotonic()
    result = run_tune(args(tmp_path / "limited.yaml", only=[], exclude=["compile"], time_limit=f"{limit}s"))
    elapsed = time.monotonic() - t0
    assert result["stopped"] and "time limit" in result["stopped"]
    assert elapsed < limit + 20  # the measuring process is killed, not waited for
    if result["chosen"] is not None:  # the best found before the limit, written as a profile
        assert (tmp_path / "limited.yaml").exists()


def test_adherence_floor_on_shapes(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a purple circle on a blue background\na red square on a white background\n"
                       "a orange circle on a green background\n")
    result = run_tune(TuneArgs(model="shapes", prompts=str(prompts), min_adherence=0.6, only=["teacache"],
                               threads=1, final_pairs=0, output=str(tmp_path / "shapes.yaml")))
    trials = [t for t in result["all_trials"] if t["status"] == "ok"]
    assert trials and all(t["adherence"] is not None for t in trials)
    if result["chosen"] is not None:
        assert result["chosen"]["adherence"] >= 0.6
    for t in trials:
        if t["adherence"] < 0.6:
            assert any(r["label"] == t["label"] and "adherence" in r["reason"] for r in result["rejected"])


def test_cli_bad_flags_exit_2_and_json_on_stdout(tuned):
    import typer
    from typer.testing import CliRunner

    from omni_plugin_tune.plugin import omni_register_commands

    app = typer.Typer()
    app.command("noop")(lambda: None)  # a group, so that "tune" is a subcommand
    omni_register_commands(app=app)
    result, out, _ = tuned
    bad = CliRunner().invoke(app, ["tune", "tiny-flux", "--min-psnr", "30", "--min-ssim", "0.9"])
    assert bad.exit_code == 2 and "--min-psnr and --min-ssim: give one quality floor" in bad.output
    ok = CliRunner().invoke(app, ["tune", "tiny-flux", "--steps", "4", "--threads", "1", "--min-psnr", "30",
                                  "--only", ",".join(SPACE), "--final-pairs", "2", "-o", str(out), "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["trials"]["measured"] == 0 and data["chosen"] is not None
    from omni.config import load_yaml

    assert load_yaml(str(out))["optimize"] == data["config"]["optimize"]  # the profile is what it printed


def test_a_run_with_another_floor_keeps_the_measurements_it_did_not_need(tuned):
    from omni.config import load_yaml

    result, out, _ = tuned
    before = {json.loads(line)["key"] for line in load_yaml(str(out))["metadata"]["trials"]}
    run_tune(args(out, min_psnr=None, quality="lossless"))
    after = {json.loads(line)["key"] for line in load_yaml(str(out))["metadata"]["trials"]}
    assert before <= after
