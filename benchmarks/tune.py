"""`omni tune` against the alternatives (issue 19).

medium-flux (CPU, 256x256, 20 steps, one torch thread, quality floor PSNR 30 dB vs uncached on the
same prompt and seed):
* `omni tune` (greedy search) -> the tuned profile;
* the exhaustive sweep of the same space (every combination the matrix plans, every knob at every
  grid value) -> its best configuration, and how many trials each needed;
* every built-in preset, measured the same way -> the fastest one that keeps the floor;
* then the tuned profile, the sweep's best, the best preset and the baseline loaded side by side and
  timed in interleaved rounds: speed ratios with omni bench's 95 % interval (pairs of runs of the same
  prompt in the same round); "no measurable difference" when an interval includes 1.
Targets: tuned vs best preset >= 1.2x; tuned within 5 % of the sweep's best with at most a third of
its trials.

shapes (trained, 64x64, 20 steps, true CFG): `omni tune --min-adherence` with the floor set to the
uncached adherence minus 0.05 on the tuning prompts, then the chosen profile's adherence checked on
the 48 evaluation prompts of `benchmarks/shapes_adherence.py` against uncached (target: within 0.05).

Measurements are recorded in the profiles under --out (also when the run is stopped with SIGINT or
SIGTERM: tune keeps its best so far), so a rerun resumes where it stopped. Each part's figures are
written to --out/result-<part>.json.
Usage: python benchmarks/tune.py [--part flux|shapes|all] [--out DIR] [--space a,b,c] [--pairs 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

FLUX_SPACE = "fuse_qkv,teacache,first_block_cache,mag_cache"


def progress(message: str) -> None:
    print(f"tune-bench: {message}", file=sys.stderr, flush=True)


def finished(result: dict) -> dict:
    """``result`` of a tune run; stop the benchmark when the run was interrupted (its profile is kept)."""
    from omni_plugin_tune.search import INTERRUPTED

    if result["stopped"] == INTERRUPTED:
        raise SystemExit(130)
    return result


def flux(args) -> dict:
    from omni.sdk import registry
    from omni_plugin_tune import compare
    from omni_plugin_tune.lab import Lab
    from omni_plugin_tune.space import Candidate, build_space
    from omni_plugin_tune.tune import TuneArgs, check, run_tune

    # tune's own side-by-side step is left to the comparison below, which times the same pick against the
    # sweep's best, the best preset and the baseline in one set of interleaved rounds
    common = dict(model="medium-flux", min_psnr=30.0, steps=20, size="256x256", threads=1,
                  only=args.space.split(","), final_pairs=0)
    tuned = finished(run_tune(TuneArgs(**common, output=os.path.join(args.out, "flux-tune.yaml")), progress))
    sweep = finished(run_tune(TuneArgs(**common, search="exhaustive",
                              output=os.path.join(args.out, "flux-sweep.yaml")), progress))
    inputs, judge, _ = check(TuneArgs(**common))
    space = build_space(registry(), inputs.family, only=common["only"], exclude=[], include_untested=False,
                        lossless_only=False)
    lab = Lab(inputs, space.knobs, progress=progress)
    presets = []
    for declared in registry().presets.values():
        name = declared.spec.name
        trial = lab.measure(Candidate(extra=(("preset", name),), label_override=f"preset {name}"))
        presets.append({"preset": name, "median_s": round(trial.median, 3) if trial.seconds else None,
                        "psnr_db": trial.psnr_db, "identical": trial.identical, "status": trial.status,
                        "not_applied": trial.reason, "meets_floor": judge.miss(trial) is None,
                        "peak_rss_bytes": trial.peak_memory_bytes})
    meeting = [p for p in presets if p["meets_floor"] and p["median_s"]]
    best_preset = min(meeting, key=lambda p: p["median_s"]) if meeting else None
    finalists = [Candidate(label_override="baseline"),
                 Candidate(extra=tuple(tuned["config"].items()), label_override=f"tuned: {tuned['chosen']['label']}"),
                 Candidate(extra=tuple(sweep["config"].items()), label_override=f"sweep best: {sweep['chosen']['label']}")]
    if best_preset is not None:
        finalists.append(Candidate(extra=(("preset", best_preset["preset"]),),
                                   label_override=f"preset {best_preset['preset']}"))
    timings, stopped = compare.interleave(lab, finalists, compare.rounds_for(args.pairs, len(lab.cases())))
    lab.close()
    by = {t.label: t for t in timings}
    tuned_t = by[finalists[1].label]
    ratios = {
        "tuned_vs_baseline": compare.speedup(by["baseline"], tuned_t),
        "tuned_vs_sweep_best": compare.speedup(by[finalists[2].label], tuned_t),
    }
    if best_preset is not None:
        ratios["tuned_vs_best_preset"] = compare.speedup(by[finalists[3].label], tuned_t)
    return {
        "space": common["only"], "floor_psnr_db": 30.0, "steps": 20, "size": "256x256",
        "tuned": {"chosen": tuned["chosen"], "config": tuned["config"], "trials": tuned["trials"]},
        "sweep": {"chosen": sweep["chosen"], "config": sweep["config"], "trials": sweep["trials"]},
        "trial_ratio": round(tuned["trials"]["total"] / max(1, sweep["trials"]["total"]), 3),
        "presets": presets, "best_preset": best_preset,
        "side_by_side": [{"label": t.label, **t.to_json()} for t in timings], "stopped": stopped,
        "ratios": {k: {**r.to_dict(), "text": r.text(), "vs_1": r.compare(1.0)} for k, r in ratios.items()},
    }


def shapes(args) -> dict:
    from omni.sdk import registry
    from omni_model_shapes.evaluate import adherence, eval_prompts
    from omni_plugin_tune.lab import Lab
    from omni_plugin_tune.space import Candidate
    from omni_plugin_tune.tune import TuneArgs, check, run_tune

    tuning = [p for p, _, _ in eval_prompts()][:: 8]  # 6 of the 48 evaluation prompts
    path = os.path.join(args.out, "shapes-prompts.txt")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(tuning) + "\n")
    common = dict(model="shapes", prompts=path, threads=1, exclude=["compile"], final_pairs=args.pairs)
    inputs, _, checker = check(TuneArgs(**common, min_adherence=0.0))
    lab = Lab(inputs, {}, progress=progress, adherence=checker)
    base = lab.measure(Candidate())
    lab.close()
    floor = round(max(0.0, base.adherence - args.adherence_drop), 4)
    tuned = finished(run_tune(TuneArgs(**common, min_adherence=floor, output=os.path.join(args.out, "shapes-tune.yaml")),
                              progress))
    optimize, sets = [], {}
    for item in tuned["config"].get("optimize", []):
        name, options = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        optimize.append(name)
        sets.update({f"{name}.{k}": v for k, v in options.items()})
    import torch

    torch.set_num_threads(1)  # the 48-prompt check runs in this process
    prompts = eval_prompts()
    uncached = adherence([], {}, prompts=prompts, device="cpu", registry=registry())
    chosen = adherence(optimize, sets, prompts=prompts, device="cpu", registry=registry())
    return {
        "tuning_prompts": len(tuning), "baseline_adherence_tuning": base.adherence, "floor": floor,
        "tuned": {"chosen": tuned["chosen"], "config": tuned["config"], "trials": tuned["trials"],
                  "left_out": tuned["left_out"]},
        "evaluation_prompts": len(prompts), "uncached_adherence_48": uncached["scores"]["all"],
        "tuned_adherence_48": chosen["scores"]["all"],
        "difference": round(uncached["scores"]["all"] - chosen["scores"]["all"], 4),
        "speed_48": {"uncached_s": round(uncached["seconds"], 2), "tuned_s": round(chosen["seconds"], 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("flux", "shapes", "all"), default="all")
    parser.add_argument("--out", default="tune-bench")
    parser.add_argument("--space", default=FLUX_SPACE, help="optimizations searched on medium-flux")
    parser.add_argument("--pairs", type=int, default=6, help="pairs per finalist in the side-by-side timing")
    parser.add_argument("--adherence-drop", type=float, default=0.05,
                        help="shapes: the floor is the uncached adherence on the tuning prompts minus this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops tune with its best so far
    out = {}
    for part, run in (("shapes", shapes), ("flux", flux)):
        if args.part in (part, "all"):
            out[part] = run(args)
            suffix = f"-drop{args.adherence_drop:g}" if part == "shapes" and args.adherence_drop != 0.05 else ""
            with open(os.path.join(args.out, f"result-{part}{suffix}.json"), "w", encoding="utf-8") as fh:
                json.dump(out[part], fh, indent=2, default=str)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return
    if "flux" in out:
        f = out["flux"]
        print(f"medium-flux: tuned {f['tuned']['chosen']['label']} ({f['tuned']['trials']['total']} trials); "
              f"sweep best {f['sweep']['chosen']['label']} ({f['sweep']['trials']['total']} trials; ratio "
              f"{f['trial_ratio']})")
        for key, r in f["ratios"].items():
            print(f"  {key}: {r['text']}")
    if "shapes" in out:
        s = out["shapes"]
        print(f"shapes: tuned {s['tuned']['chosen'] and s['tuned']['chosen']['label']}; adherence on 48 prompts "
              f"{s['tuned_adherence_48']:.3f} vs uncached {s['uncached_adherence_48']:.3f} "
              f"(difference {s['difference']:+.3f})")


if __name__ == "__main__":  # the measuring processes are started by a fork server, which re-imports this file
    main()
