"""Step caches side by side: TeaCache, first-block cache, MagCache, TaylorSeer, PAB and cache-dit at
several thresholds. Speed is measured with `omni bench` on a medium pipeline (random weights,
where per-step compute dominates); quality on the trained `shapes` model (PSNR vs its uncached
output and prompt adherence on 48 prompts), so a threshold that is fast but breaks the image shows up
as lost adherence. Prints a table, writes --json and an optional PNG plot (speedup vs PSNR).

Speed figures come with omni bench's 95 % interval (paired runs, repeated until the interval is within
--precision or --runs pairs / --max-seconds per setting are spent); "no measurable difference" is said
when it includes 1.0.

Usage: python benchmarks/caches.py [--speed-model medium-flux] [--steps 20] [--runs 12] [--quick]
                                  [--methods teacache,first_block_cache] [--include earlier.json]
                                  [--plot docs/caches.png] [--json]

Thresholds below were chosen so each method spans "no reuse" to "most steps reused" on medium-flux
(random weights make the first block's residual change fast: FBC reuses nothing up to 0.4).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

# method -> (option, thresholds); options are checked against the installed declarations
SWEEP = {
    "teacache": ("rel_l1_thresh", [0.2, 0.4, 0.8, 1.6]),
    "first_block_cache": ("threshold", [0.5, 0.6, 0.7, 0.8]),
    "mag_cache": ("threshold", [0.04, 0.08, 0.16]),
    "taylorseer_cache": ("cache_interval", [2, 3, 5]),
    "pyramid_attention_broadcast": ("spatial_attention_block_skip_range", [2, 3, 4]),
    "cache_dit": ("residual_diff_threshold", [0.08, 0.16, 0.32]),
}


def _plot(rows, path: str) -> None:
    """Speedup (x) vs PSNR (y), one colour per method, drawn with PIL (no plotting dependency)."""
    from PIL import Image, ImageDraw

    w, h, m = 720, 480, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    pts = [r for r in rows if r.get("psnr_db") is not None]
    if not pts:
        return
    xs = [r["speedup"] for r in pts] + [1.0]
    ys = [min(r["psnr_db"], 80) for r in pts]
    x0, x1 = 0.9, max(xs) * 1.05
    y0, y1 = min(ys) - 2, max(ys) + 2
    sx = lambda v: m + (v - x0) / (x1 - x0) * (w - 2 * m)  # noqa: E731
    sy = lambda v: h - m - (v - y0) / (y1 - y0) * (h - 2 * m)  # noqa: E731
    d.rectangle([m, m, w - m, h - m], outline="black")
    d.text((w // 2 - 60, h - m + 25), "speedup (x, end to end)", fill="black")
    d.text((5, m - 20), "PSNR vs uncached (dB, shapes)", fill="black")
    for t in range(5):
        xv = x0 + t * (x1 - x0) / 4
        yv = y0 + t * (y1 - y0) / 4
        d.text((sx(xv) - 10, h - m + 5), f"{xv:.1f}", fill="black")
        d.text((10, sy(yv) - 5), f"{yv:.0f}", fill="black")
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for i, method in enumerate(dict.fromkeys(r["method"] for r in pts)):
        series = sorted((r for r in pts if r["method"] == method), key=lambda r: r["speedup"])
        c = colours[i % len(colours)]
        coords = [(sx(r["speedup"]), sy(min(r["psnr_db"], 80))) for r in series]
        if len(coords) > 1:
            d.line(coords, fill=c, width=2)
        for x, y in coords:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=c)
        d.text((w - m - 150, m + 10 + 15 * i), method, fill=c)
    img.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-model", default="medium-flux")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=12, help="at most this many paired runs per setting")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="measuring time per setting")
    parser.add_argument("--precision", type=float, default=0.03, help="stop once the interval is within this")
    parser.add_argument("--quick", action="store_true", help="one threshold per method (smoke run)")
    parser.add_argument("--methods", default=None, help="comma-separated subset of: " + ", ".join(SWEEP))
    parser.add_argument("--plot", default=None)
    parser.add_argument("--include", default=None, help="a --json output of an earlier run (same --steps) whose "
                        "rows join this run's table and plot")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import os

    import torch

    os.environ["OMP_NUM_THREADS"] = "1"  # omni bench's worker processes inherit it
    from omni.bench import bench
    from omni.plugins import get_registry
    from omni.verify import psnr
    from omni_model_shapes.evaluate import adherence, eval_prompts

    torch.set_num_threads(1)
    registry = get_registry()
    prompts = eval_prompts()
    base_quality = adherence([], {}, prompts=prompts, steps=args.steps, device="cpu", registry=registry)
    rows, notes = [], []
    chosen = args.methods.split(",") if args.methods else list(SWEEP)
    unknown = [m for m in chosen if m not in SWEEP]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(SWEEP)}")
    for method, (option, values) in ((m, SWEEP[m]) for m in chosen):
        if method not in registry.optimizations:
            notes.append(f"{method}: plugin not installed")
            continue
        spec = registry.optimization(method).spec
        if option not in {o.name for o in spec.options}:
            notes.append(f"{method}: has no option {option}")
            continue
        for value in values[1:2] if args.quick else values:
            print(f"caches.py: {method} {option}={value} ...", file=sys.stderr, flush=True)  # progress
            sets = {f"{method}.{option}": value}
            speed = bench(args.speed_model, [method], sets=sets, runs=args.runs, max_seconds=args.max_seconds,
                          precision=args.precision, warmup=1, device="cpu",
                          generation={"num_inference_steps": args.steps}, registry=registry)
            if speed["optimized"]["applied"] != [method]:
                notes.append(f"{method} {option}={value}: not applied ({speed['optimized']['skipped']})")
                continue
            quality = adherence([method], sets, prompts=prompts, steps=args.steps, device="cpu", registry=registry)
            p = [psnr(a, b) for a, b in zip(quality["images"], base_quality["images"])]
            finite = [v for v in p if not math.isinf(v)]
            rows.append({
                "method": method, "option": option, "value": value,
                "speedup": speed["speedup"]["median"], "speedup_low": speed["speedup"]["low"],
                "speedup_high": speed["speedup"]["high"], "pairs": speed["pairs"], "verdict": speed["verdict"],
                "psnr_speed_model_db": speed["psnr_db"],
                "computed": speed["optimized"]["cache_computed"], "reused": speed["optimized"]["cache_reused"],
                "psnr_db": round(sum(finite) / len(finite), 2) if finite else None,
                "adherence_all": quality["scores"]["all"], "adherence_fg": quality["scores"]["fg"],
                "adherence_shape": quality["scores"]["shape"],
                "shapes_reused": quality["cache_reused"], "shapes_computed": quality["cache_computed"],
            })
    if args.include:
        with open(args.include) as fh:
            earlier = json.load(fh)
        if earlier.get("steps") != args.steps or earlier.get("speed_model") != args.speed_model:
            parser.error(f"--include {args.include}: measured with other settings "
                         f"({earlier.get('speed_model')}, {earlier.get('steps')} steps)")
        rows = [r for r in earlier["rows"] if r["method"] not in chosen] + rows
    result = {"speed_model": args.speed_model, "quality_model": "shapes", "steps": args.steps,
              "baseline_adherence": base_quality["scores"], "rows": rows, "notes": notes}
    if args.plot:
        _plot(rows, args.plot)
        result["plot"] = args.plot
    if args.json:
        print(json.dumps(result, indent=2))
        return
    header = (f"| method | setting | speedup ({args.speed_model}, 95% interval) | computed/reused | PSNR ({args.speed_model}) "
              "| PSNR vs uncached (shapes) | adherence all / fg / shape (shapes) | shapes computed/reused |")
    print(f"baseline adherence (shapes, {args.steps} steps, 48 prompts): all {base_quality['scores']['all']:.2f}, "
          f"fg {base_quality['scores']['fg']:.2f}, shape {base_quality['scores']['shape']:.2f}")
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        spread = ("" if r.get("speedup_low") is None
                  else f" [{r['speedup_low']:.2f}, {r['speedup_high']:.2f}], {r['pairs']} pairs")
        print(f"| {r['method']} | {r['option']}={r['value']} | {r['speedup']:.2f}x{spread} ({r.get('verdict', 'older run')}) "
              f"| {r['computed']}/{r['reused']} "
              f"| {r.get('psnr_speed_model_db')} | {r['psnr_db']} | {r['adherence_all']:.2f} / {r['adherence_fg']:.2f} / {r['adherence_shape']:.2f} "
              f"| {r['shapes_computed']}/{r['shapes_reused']} |")
    for n in notes:
        print(f"note: {n}")


if __name__ == "__main__":
    main()
