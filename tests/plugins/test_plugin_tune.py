"""omni tune without measuring: flags, the search space (knobs, grids, conflicts), the rules that judge
trials (floor, budget, noise), the profile's metadata key in the config surface, and the declarations
tune reads (``Option.faster``, ``ModelSpec.adherence``). The search itself on tiny models is in
test_plugin_tune_search.py."""

import math

import numpy as np
import pytest

from omni.sdk import DeclarationError, ModelSpec, Option, UsageError, registry
from omni_plugin_tune.compare import Timing, pick
from omni_plugin_tune.search import Search
from omni_plugin_tune.space import Candidate, build_space, knob_grid
from omni_plugin_tune.trials import Floor, Judge, Trial, faster, parse_bytes, parse_seconds
from omni_plugin_tune.tune import TuneArgs, check

CACHES = ("teacache", "first_block_cache", "mag_cache")


@pytest.fixture(scope="module")
def space():
    return build_space(registry(), "flux", only=["fuse_qkv", "vae_slicing", *CACHES], exclude=[],
                       include_untested=False, lossless_only=False)


def trial(label="x", seconds=(1.0,), memory=100, psnr=None, identical=False, adherence=None, status="ok"):
    return Trial(label=label, key=label, config={}, seconds=list(seconds), peak_memory_bytes=memory, psnr_db=psnr,
                 identical=identical, max_abs_diff=0.0 if identical else 0.1, adherence=adherence, status=status)


# ---------------------------------------------------------------------------- flags
@pytest.mark.parametrize("kwargs, message", [
    ({"min_psnr": 30, "min_ssim": 0.9}, "--min-psnr and --min-ssim: give one quality floor"),
    ({"quality": "best"}, "--quality: only 'lossless' is known"),
    ({"min_psnr": -3}, "--min-psnr must be a PSNR in dB"),
    ({"min_adherence": 2}, "--min-adherence must be in [0, 1]"),
    ({"size": "256"}, "--size must be WIDTHxHEIGHT"),
    ({"budget_memory": "lots"}, "--budget-memory: 'lots' is not a size"),
    ({"time_limit": "soon"}, "--time-limit: 'soon' is not a duration"),
    ({"repeats": 0}, "--repeats must be at least 1"),
    ({"search": "random"}, "--search must be greedy or exhaustive"),
    ({"prompts": "/nonexistent/prompts.txt"}, "--prompts /nonexistent/prompts.txt: cannot read it"),
    ({"min_adherence": 0.5}, "--min-adherence: tiny-flux declares no adherence checker"),
])
def test_bad_flags_are_one_line_naming_the_flag(kwargs, message):
    with pytest.raises(UsageError) as err:
        check(TuneArgs(model="tiny-flux", **kwargs))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_family_name_is_not_a_model():
    with pytest.raises(UsageError, match="names a family, not a model"):
        check(TuneArgs(model="flux"))


def test_unknown_optimization_in_only_is_refused():
    with pytest.raises(UsageError, match="--only/--exclude: no optimization named 'teacash'"):
        build_space(registry(), "flux", only=["teacash"], exclude=[], include_untested=False, lossless_only=False)


def test_sizes_and_durations():
    assert parse_bytes("8GiB") == 8 * 2**30 and parse_bytes("800MiB") == 800 * 2**20 and parse_bytes("1.5GB") == 1.5e9
    assert parse_seconds("10m") == 600 and parse_seconds("90s") == 90 and parse_seconds("2") == 2
    for bad in ("-1GiB", "8 parsecs", ""):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_no_floor_given_means_lossless():
    _, judge, _ = check(TuneArgs(model="tiny-flux"))
    assert judge.floor.lossless and judge.floor.describe().startswith("lossless")


# ---------------------------------------------------------------------------- the space
def test_caches_are_searched_on_their_declared_knob(space):
    knobs = space.knobs
    assert knobs["teacache.rel_l1_thresh"].per_request
    assert {k.split(".")[0] for k in knobs} == set(CACHES)
    assert space.choice("fuse_qkv").knob is None and space.choice("fuse_qkv").lossless


def test_knob_grid_runs_from_slowest_to_fastest_inside_the_declared_range():
    up = Option("t", "float", 0.2, "x", min=0.0, max=1.0, per_request=True, faster="higher")
    assert knob_grid(up) == (0.05, 0.1, 0.2, 0.4, 0.8)
    down = Option("keep", "int", 4, "x", min=1, per_request=True, faster="lower")
    grid = knob_grid(down)
    assert grid == tuple(sorted(grid, reverse=True)) and 4 in grid and min(grid) >= 1


def test_faster_is_only_for_numeric_options_with_a_default():
    with pytest.raises(DeclarationError, match="faster="):
        Option("mode", "choice", "a", "x", choices=("a", "b"), faster="higher")
    with pytest.raises(DeclarationError, match="faster="):
        Option("t", "float", 0.2, "x", faster="sideways")


def test_lossless_floor_leaves_lossy_optimizations_out():
    s = build_space(registry(), "flux", only=["fuse_qkv", "teacache"], exclude=[], include_untested=False,
                    lossless_only=True)
    assert [c.name for c in s.choices] == ["fuse_qkv"]
    assert ("teacache", "lossy, and the quality floor is lossless") in s.left_out


def test_unavailable_and_excluded_optimizations_are_listed_with_the_reason():
    s = build_space(registry(), "flux", only=[], exclude=["compile"], include_untested=False, lossless_only=False)
    reasons = dict(s.left_out)
    assert reasons["compile"] == "excluded (--exclude)"
    assert reasons["channels_last"].startswith("unsupported: flux lacks trait(s) conv-heavy")


def test_two_step_caches_are_a_conflict_and_the_sweep_never_holds_two(space):
    assert "only one can be active" in space.conflict(("teacache", "first_block_cache"))
    assert space.conflict(("fuse_qkv", "teacache")) is None
    cands = list(Search(None, space, Judge(Floor(min_psnr=30))).sweep_candidates())
    assert all(sum(n in CACHES for n in c.names) <= 1 for c in cands)
    # fuse_qkv and vae_slicing on/off x (no cache + 3 caches x 7 knob values)
    assert len(cands) == 4 * (1 + sum(len(space.choice(n).knob.grid) for n in CACHES))
    assert len({c.key() for c in cands}) == len(cands)


def test_candidate_config_is_what_omni_run_reads(space):
    cand = Candidate().with_choice(space.choice("fuse_qkv")).with_choice(space.choice("teacache"), 0.4)
    assert cand.config(space.knobs) == {"optimize": ["fuse_qkv", {"teacache": {"rel_l1_thresh": 0.4}}]}
    # per-request knob values travel with each request: one load serves every value
    assert cand.config(space.knobs, per_request=False) == {"optimize": ["fuse_qkv", "teacache"]}
    assert cand.request_options(space.knobs) == {"teacache.rel_l1_thresh": 0.4}
    assert cand.label == "fuse_qkv + teacache(rel_l1_thresh=0.4)"


# ---------------------------------------------------------------------------- judging trials
def test_floor_and_budget():
    judge = Judge(Floor(min_psnr=30), budget=150)
    assert judge.miss(trial(psnr=35)) is None
    assert judge.miss(trial(psnr=25)) == "PSNR 25.0 dB < 30"
    assert "budget" in judge.miss(trial(psnr=35, memory=200))
    assert judge.miss(trial(status="failed")) == "failed"
    lossless = Judge(Floor(lossless=True))
    assert lossless.miss(trial(identical=True)) is None and "not lossless" in lossless.miss(trial(psnr=90))
    adherence = Judge(Floor(min_adherence=0.6))
    assert adherence.miss(trial(adherence=0.7)) is None and adherence.miss(trial(adherence=0.5))


def test_a_difference_inside_the_noise_is_not_a_win():
    assert faster(trial(seconds=[1.0, 1.02]), trial(seconds=[1.5, 1.52]))
    assert not faster(trial(seconds=[1.0]), trial(seconds=[1.03]))  # under 5 %
    assert not faster(trial(seconds=[0.8, 1.2]), trial(seconds=[1.1, 1.15]))  # inside the measured spread
    # one stalled run among six does not hide a 30 % difference
    assert faster(trial(seconds=[0.70, 0.71, 0.69, 0.70, 0.72, 2.5]), trial(seconds=[1.0, 1.01, 0.99, 1.0, 1.02, 1.0]))


def test_better_prefers_acceptable_then_faster_and_lighter_when_over_budget():
    judge = Judge(Floor(min_psnr=30), budget=150)
    slow_ok, fast_heavy = trial(seconds=[2.0], psnr=40), trial(seconds=[1.0], psnr=40, memory=300)
    assert judge.better(slow_ok, fast_heavy) and not judge.better(fast_heavy, slow_ok)
    assert judge.better(trial(memory=200, psnr=40), trial(memory=300, psnr=40))  # both over: lighter wins
    assert not judge.better(trial(seconds=[0.1], psnr=20), slow_ok)  # never below the floor


def test_pick_calls_overlapping_timings_no_measurable_difference():
    judge = Judge(Floor(min_psnr=30))
    a = (Candidate(("teacache",)), trial("a", psnr=35), Timing("a", [1.00, 1.10, 0.95, 1.05, 1.00, 1.02]))
    b = (Candidate(("fuse_qkv",)), trial("b", identical=True), Timing("b", [1.02, 1.00, 1.01, 1.00, 1.08, 0.99]))
    chosen, notes = pick([a, b], judge)
    assert chosen is b and "no measurable difference" in notes[0]  # same speed: the better quality wins
    c = (Candidate(("first_block_cache",)), trial("c", psnr=31), Timing("c", [0.5, 0.52, 0.49, 0.5, 0.51, 0.5]))
    chosen, notes = pick([a, b, c], judge)
    assert chosen is c and not notes


# ---------------------------------------------------------------------------- config surface and declarations
def test_metadata_is_ignored_by_the_config_surface_but_must_be_a_mapping():
    from omni.config import resolve_config
    from omni.errors import ConfigError

    cfg = resolve_config(registry(), {"optimize": ["teacache"], "metadata": {"tool": "x", "trials": ["{}"]}})
    assert list(cfg.requested) == ["teacache"] and cfg.metadata["tool"] == "x"
    with pytest.raises(ConfigError, match="metadata: must be a mapping"):
        resolve_config(registry(), {"metadata": "tuned"})


def test_a_profile_from_another_device_is_noted():
    from omni.config import device_note

    here = {"device": "cpu", "device_name": "AMD EPYC, 2 CPUs"}
    assert device_note({"device": {"kind": "cpu", "name": "AMD EPYC, 2 CPUs"}}, here) is None
    note = device_note({"device": {"kind": "cuda", "name": "NVIDIA H200"}}, here)
    assert note.startswith("this config was tuned on cuda (NVIDIA H200) and runs on cpu (AMD EPYC, 2 CPUs)")
    assert device_note({}, here) is None


def test_shapes_declares_its_adherence_checker():
    from omni.sdk import behaviour
    from omni_model_shapes.data import COLOURS, render

    spec = registry().model("shapes").spec
    checker = behaviour(spec.adherence)
    import random

    rng = random.Random(0)
    images = [render("red", "circle", "blue", rng) / 255.0, render("red", "circle", "blue", rng) / 255.0]
    assert "red" in COLOURS
    assert checker(images, ["a red circle on a blue background"] * 2) == 1.0
    assert checker(images, ["a green square on a yellow background"] * 2) == 0.0
    with pytest.raises(DeclarationError, match="adherence"):
        ModelSpec(name="m", family="flux", summary="s", build="x:y", adherence=42)


def test_quality_figures_use_the_worst_output():
    floor = Floor(min_psnr=30)
    t = trial(psnr=29.5)
    assert floor.quality(t) == 29.5 and floor.quality(trial(identical=True)) == math.inf
    assert np.isfinite(Floor(min_ssim=0.9).quality(Trial("s", "s", {}, ssim=0.95)))


# ---------------------------------------------------------------------------- the search logic on a model of costs
class ModelLab:
    """Stands in for the measuring processes with a deterministic cost model (the real ones are
    exercised in test_plugin_tune_search.py): fuse_qkv is lossless and 10 % faster; each cache's knob
    trades PSNR for speed; torchao is 20 % faster at 45 dB, and costs 16 dB more on top of a cache."""

    def __init__(self, stop_after=None, exc=None):
        self.measured, self.stop_after, self.exc = [], stop_after, exc

    def measure(self, cand):
        if self.stop_after is not None and len(self.measured) >= self.stop_after:
            raise self.exc
        self.measured.append(cand)
        t, psnr = 1.0, math.inf
        knobs = dict(cand.knobs)
        if "fuse_qkv" in cand.names:
            t *= 0.9
        for cache, per_unit, loss in (("teacache", 1.0, 40), ("first_block_cache", 4.0, 200), ("mag_cache", 2.0, 60)):
            value = knobs.get(f"{cache}.{'rel_l1_thresh' if cache == 'teacache' else 'threshold'}")
            if value is not None:
                t /= 1 + per_unit * value
                psnr = min(psnr, 60 - loss * value)
        if "torchao" in cand.names:
            t *= 0.8
            psnr = 45 if psnr == math.inf else psnr - 16
        identical = psnr == math.inf
        return Trial(cand.label, cand.key(), {}, seconds=[t] * 3, peak_memory_bytes=100, identical=identical,
                     psnr_db=None if identical else psnr, max_abs_diff=0.0 if identical else 0.1)


@pytest.fixture(scope="module")
def wide():
    return build_space(registry(), "flux", only=["fuse_qkv", "torchao", *CACHES], exclude=[], include_untested=False,
                       lossless_only=False)


def test_greedy_search_finds_the_sweeps_best_with_a_fraction_of_its_trials(wide):
    judge = Judge(Floor(min_psnr=30))
    lab = ModelLab()
    tuned = Search(lab, wide, judge).run()
    sweep_lab = ModelLab()
    swept = Search(sweep_lab, wide, judge).sweep()
    assert tuned.best is not None and swept.best is not None
    assert judge.miss(tuned.best[1]) is None
    assert tuned.best[1].median <= swept.best[1].median * 1.05
    assert len({c.key() for c in lab.measured}) * 3 <= len(sweep_lab.measured)
    assert lab.measured[1].names == ("fuse_qkv",)  # lossless first, right after the baseline
    assert all(sum(n in CACHES for n in c.names) <= 1 for c in lab.measured + sweep_lab.measured)
    assert "fuse_qkv" in tuned.best[0].names  # kept under the lossy addition


def test_a_knob_is_backed_off_when_a_combination_misses_the_floor(wide):
    judge = Judge(Floor(min_psnr=30))
    lab = ModelLab()
    outcome = Search(lab, wide, judge).run()
    # MagCache alone keeps 30 dB up to 0.48; with torchao on top (-16 dB) that misses, so the threshold is
    # searched again below 0.48: 0.12 keeps the floor (36.8 dB), 0.24 does not (29.6 dB)
    labels = [c.label for c in lab.measured]
    assert "fuse_qkv + mag_cache(threshold=0.48) + torchao" in labels
    assert "fuse_qkv + mag_cache(threshold=0.12) + torchao" in labels
    assert "fuse_qkv + mag_cache(threshold=0.24) + torchao" in labels
    # 0.9 * 0.8 / 1.24 = 0.58 s is slower than fuse_qkv + mag_cache(0.48) alone (0.9 / 1.96 = 0.46 s)
    assert outcome.best[0].label == "fuse_qkv + mag_cache(threshold=0.48)"
    assert judge.miss(outcome.best[1]) is None


@pytest.mark.parametrize("exc, words", [(KeyboardInterrupt(), "interrupted"), (None, "time limit")])
def test_a_stopped_search_keeps_the_best_so_far(wide, exc, words):
    from omni_plugin_tune.lab import TimeUp

    lab = ModelLab(stop_after=3, exc=exc or TimeUp())
    outcome = Search(lab, wide, Judge(Floor(min_psnr=30))).run()
    assert words in outcome.stopped and outcome.best is not None and len(lab.measured) == 3
