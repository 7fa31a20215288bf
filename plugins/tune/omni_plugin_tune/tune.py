"""``omni tune`` from arguments to result: check the flags (one ``UsageError`` naming the flag), build
the space, search (or sweep), compare the finalists side by side, write the profile."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from omni.sdk import Environment, UsageError, behaviour, device_name, registry, resolve
from omni_plugin_tune import compare, profile
from omni_plugin_tune.lab import Inputs, Lab
from omni_plugin_tune.search import Outcome, Search
from omni_plugin_tune.space import build_space
from omni_plugin_tune.trials import Floor, Judge, Trial, mib, parse_bytes, parse_seconds

DEFAULT_PROMPT = "a red circle on a blue background"


@dataclass
class TuneArgs:
    model: str
    budget_memory: str | None = None
    min_psnr: float | None = None
    min_ssim: float | None = None
    quality: str | None = None
    min_adherence: float | None = None
    steps: int | None = None
    size: str | None = None
    prompts: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    repeats: int = 1
    time_limit: str | None = None
    output: str | None = None
    only: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    include_untested: bool = False
    search: str = "greedy"
    finalists: int = 3
    final_pairs: int = 6
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None


def _floor(args: TuneArgs) -> Floor:
    picked = [f for f, v in (("--min-psnr", args.min_psnr), ("--min-ssim", args.min_ssim),
                             ("--quality", args.quality)) if v is not None]
    if len(picked) > 1:
        raise UsageError(f"{picked[0]} and {picked[1]}: give one quality floor")
    if args.quality is not None and args.quality != "lossless":
        raise UsageError(f"--quality: only 'lossless' is known, not {args.quality!r} (or use --min-psnr/--min-ssim)")
    if args.min_psnr is not None and not 0 < args.min_psnr < 200:
        raise UsageError(f"--min-psnr must be a PSNR in dB (0..200), got {args.min_psnr}")
    if args.min_ssim is not None and not 0 < args.min_ssim <= 1:
        raise UsageError(f"--min-ssim must be in (0, 1], got {args.min_ssim}")
    if args.min_adherence is not None and not 0 <= args.min_adherence <= 1:
        raise UsageError(f"--min-adherence must be in [0, 1], got {args.min_adherence}")
    lossless = args.quality == "lossless" or (not picked and args.min_adherence is None)
    return Floor(lossless=lossless, min_psnr=args.min_psnr, min_ssim=args.min_ssim, min_adherence=args.min_adherence)


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 8 or int(h) < 8:
        raise UsageError(f"--size must be WIDTHxHEIGHT such as 256x256, got {text!r}")
    return int(w), int(h)


def _prompts(path: str | None) -> tuple[str, ...]:
    if path is None:
        return (DEFAULT_PROMPT,)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = tuple(line.strip() for line in fh if line.strip() and not line.startswith("#"))
    except OSError as exc:
        raise UsageError(f"--prompts {path}: cannot read it ({exc.strerror})") from None
    if not lines:
        raise UsageError(f"--prompts {path}: holds no prompt (one per line)")
    return lines


def _parsed(flag: str, parse: Any, value: str | None) -> Any:
    try:
        return parse(value) if value is not None else None
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def check(args: TuneArgs) -> tuple[Inputs, Judge, Any]:
    """Every flag checked and the model resolved, before anything is measured."""
    for flag, value, lo in (("--repeats", args.repeats, 1), ("--finalists", args.finalists, 1),
                            ("--final-pairs", args.final_pairs, 0), ("--steps", args.steps, 1),
                            ("--threads", args.threads, 1)):
        if value is not None and value < lo:
            raise UsageError(f"{flag} must be at least {lo}, got {value}")
    if not args.seeds or any(s < 0 for s in args.seeds):
        raise UsageError("--seeds must be non-negative integers")
    if args.search not in ("greedy", "exhaustive"):
        raise UsageError(f"--search must be greedy or exhaustive, not {args.search!r}")
    if args.device not in (None, "cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda, not {args.device!r}")
    floor = _floor(args)
    budget = _parsed("--budget-memory", parse_bytes, args.budget_memory)
    _parsed("--time-limit", parse_seconds, args.time_limit)
    resolved = resolve(args.model)
    if resolved.kind == "family":
        raise UsageError(f"{args.model!r} names a family, not a model: pass a local folder, a cached hub id or a "
                         f"named model such as tiny-{resolved.family}")
    adherence = None
    if floor.min_adherence is not None:
        if resolved.model is None or resolved.model.adherence is None:
            raise UsageError(f"--min-adherence: {args.model} declares no adherence checker (ModelSpec.adherence)")
        adherence = behaviour(resolved.model.adherence)
    device = args.device or ("cuda" if Environment.detect().accelerator else "cpu")
    inputs = Inputs(model=args.model, family=resolved.family, device=device, device_name=device_name(device),
                    dtype=args.dtype, steps=args.steps, size=_size(args.size), prompts=_prompts(args.prompts),
                    seeds=tuple(args.seeds), repeats=args.repeats, threads=args.threads)
    return inputs, Judge(floor, budget), adherence


def run_tune(args: TuneArgs, progress=lambda _m: None) -> dict[str, Any]:
    """Search, compare, write the profile; returns the result (JSON-able). ``result["chosen"]`` is None
    when no configuration keeps the floor within the budget (then no profile is written)."""
    start = time.monotonic()
    inputs, judge, adherence = check(args)
    deadline = start + parse_seconds(args.time_limit) if args.time_limit else None
    space = build_space(registry(), inputs.family, only=args.only, exclude=args.exclude,
                        include_untested=args.include_untested, lossless_only=judge.floor.lossless)
    output = args.output or f"tune-{inputs.model.rstrip('/').split('/')[-1]}.yaml"
    previous = profile.read(output)
    recorded, note = profile.recorded(previous, inputs.signature())
    if note:
        progress(note)
    progress(f"{inputs.model}: {len(space.choices)} optimizations to search ({', '.join(c.name for c in space.choices)}); "
             f"floor {judge.floor.describe()}" + (f", budget {args.budget_memory}" if judge.budget else ""))
    lab = Lab(inputs, space.knobs, deadline=deadline, progress=progress, recorded=recorded, adherence=adherence)
    search = Search(lab, space, judge, progress)
    side = profile.recorded_comparison(previous, inputs.signature())
    try:
        outcome = search.sweep() if args.search == "exhaustive" else search.run()
        if outcome.stopped:
            progress(outcome.stopped)
        finals, comparison, notes = _compare(lab, outcome, judge, args, side)
    finally:
        lab.close()
    if lab.environment is None and recorded and previous is not None:
        lab.environment = previous["metadata"].get("environment")  # everything was reused
    if lab.side_by_side is None:
        lab.side_by_side = side  # this run timed nothing side by side: keep what the profile recorded
    result = _result(inputs, judge, space, lab, outcome, finals, comparison, notes, args)
    result["elapsed_s"] = round(time.monotonic() - start, 1)
    if result["chosen"] is not None:
        profile.write(output, result["config"], _metadata(result))
        result["profile"] = output
    return result


def _compare(lab: Lab, outcome: Outcome, judge: Judge, args: TuneArgs, recorded: dict[str, Any] | None):
    """Finalists (the search's pick, the fastest others of the front, the baseline) timed side by side."""
    if outcome.best is None:
        return None, None, []
    front = compare.pareto(list(lab.trials.values()), judge)
    by_key = lab.candidates
    picks = [outcome.best] + [(by_key[t.key], t) for t in front
                              if t.key != outcome.best[1].key and judge.miss(t) is None and t.key in by_key]
    picks = picks[: args.finalists]
    base = next(((by_key[t.key], t) for t in lab.trials.values() if t.key in by_key and not by_key[t.key].names), None)
    if base is not None and all(p[1].key != base[1].key for p in picks):
        picks.append(base)
    if args.final_pairs == 0 or outcome.stopped or len(picks) < 2:
        why = "skipped (--final-pairs 0)" if args.final_pairs == 0 else (
            "skipped: the time limit was reached" if outcome.stopped else "nothing to compare")
        return (outcome.best[0], outcome.best[1], None), None, [f"side-by-side comparison {why}"]
    rounds = compare.rounds_for(args.final_pairs, len(lab.cases()))
    keys = [p[0].key() for p in picks]
    if recorded is not None and recorded["keys"] == keys and recorded["rounds"] == rounds:
        timings = [compare.Timing(p[0].label, list(sec)) for p, sec in zip(picks, recorded["seconds"])]
        stopped, notes = None, ["side-by-side timing recorded in the profile (same finalists): reused"]
        lab.side_by_side = recorded
        lab.progress(notes[0])
    else:
        timings, stopped = compare.interleave(lab, [p[0] for p in picks], rounds)
        notes = [stopped] if stopped else []
        if stopped is None:
            lab.side_by_side = {"keys": keys, "rounds": rounds, "seconds": [t.seconds for t in timings]}
    if len(timings) < len(picks):
        return (outcome.best[0], outcome.best[1], None), None, notes
    finals = [(p[0], p[1], t) for p, t in zip(picks, timings)]
    chosen, pick_notes = compare.pick(finals, judge)
    return chosen, finals, notes + pick_notes


def _result(inputs, judge, space, lab, outcome, finals, comparison, notes, args) -> dict[str, Any]:
    trials = list(lab.trials.values())
    base_trial = outcome.baseline
    chosen = None
    config: dict[str, Any] = {}
    base_timing = next((t for c, _, t in comparison or [] if not c.names), None)
    if finals is not None:
        cand, trial, timing = finals
        config = cand.config(space.knobs)
        chosen = {"label": cand.label, **_figures(trial)}
        if timing is not None:
            chosen["timing"] = timing.to_json()
        if timing is not None and base_timing is not None:
            chosen["speedup_vs_baseline"] = _ratio(compare.speedup(base_timing, timing))
        elif base_trial is not None and trial.seconds and base_trial.seconds:
            chosen["speedup_vs_baseline"] = {"median": round(base_trial.median / trial.median, 3),
                                             "text": "from the search's figures (not timed side by side)"}
    front = compare.pareto(trials, judge)
    lightest = min((t for t in trials if judge.meets_floor(t)), key=lambda t: t.peak_memory_bytes or 0, default=None)
    return {
        "model": inputs.model, "family": inputs.family, "inputs": {**inputs.to_json(), "signature": inputs.signature()},
        "floor": judge.floor.to_json(), "budget_memory_bytes": judge.budget, "search": args.search,
        "chosen": chosen, "config": config,
        "baseline": _figures(base_trial) if base_trial is not None and base_trial.status == "ok" else None,
        "comparison": [{"label": c.label, **_figures(tr), **t.to_json(),
                        "speedup_vs_baseline": _ratio(compare.speedup(base_timing, t)) if base_timing else None}
                       for c, tr, t in comparison or []],
        "front": [{"label": t.label, "acceptable": judge.miss(t) is None, **_figures(t)} for t in front],
        "rejected": [{"label": t.label, "status": t.status, "reason": judge.miss(t)} for t in trials
                     if judge.miss(t) is not None],
        "left_out": [{"optimization": n, "reason": r} for n, r in space.left_out + outcome.dropped],
        "trials": {"measured": lab.measured, "reused": sum(t.reused_from_profile for t in trials), "total": len(trials),
                   "generations": lab.generations},
        "stopped": outcome.stopped,
        "notes": notes + ([] if chosen is not None else [_nothing(judge, lightest)]),
        "device": {"kind": inputs.device, "name": inputs.device_name},
        "environment": lab.environment,
        # the profile keeps every measurement with these inputs, also those this run's search did not need
        "all_trials": [t.to_json() for t in {**lab.recorded, **lab.trials}.values()],
        "side_by_side": lab.side_by_side,
    }


def _ratio(ratio: Any) -> dict[str, Any]:
    verdict = {"above": "faster", "below": "slower", "includes": "no measurable difference",
               "unknown": "too few pairs to tell"}[ratio.compare(1.0)]
    return {**ratio.to_dict(), "text": ratio.text(), "verdict": verdict}


def _nothing(judge: Judge, lightest: Trial | None) -> str:
    if lightest is None:
        return f"no configuration kept the floor ({judge.floor.describe()})"
    return (f"no configuration kept the floor within the budget; the lightest that kept the floor was "
            f"{lightest.label} at {mib(lightest.peak_memory_bytes)}")


def _figures(t: Trial) -> dict[str, Any]:
    return {"median_s": round(t.median, 4) if t.seconds else None, "peak_memory_bytes": t.peak_memory_bytes,
            "memory_kind": t.memory_kind, "psnr_db": t.psnr_db, "identical": t.identical, "ssim": t.ssim,
            "adherence": t.adherence, "reused_calls": t.reused, "computed_calls": t.computed}


def _metadata(result: dict[str, Any]) -> dict[str, Any]:
    return {"model": result["model"], "device": result["device"], "inputs": result["inputs"],
            "environment": result["environment"], "floor": result["floor"],
            "budget_memory_bytes": result["budget_memory_bytes"], "search": result["search"],
            "chosen": result["chosen"], "comparison": result["comparison"], "front": result["front"],
            "left_out": result["left_out"], "stopped": result["stopped"], "notes": result["notes"],
            "trials": result["all_trials"], "side_by_side": result["side_by_side"]}
