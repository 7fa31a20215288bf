"""Prompt adherence of the shipped `shapes` model on 48 prompts (32 seen + 8 held-out triples x 2 seeds).

Targets: colours >= 90 %, shape >= 60 %. Writes a contact sheet with --grid PATH.
Usage: python benchmarks/shapes_adherence.py [--steps 20] [--optimize NAME] [--set K=V] [--grid out.png] [--json]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--optimize", action="append", default=[])
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--grid", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import torch

    from omni.config import parse_set
    from omni_model_shapes.evaluate import adherence, eval_prompts

    torch.set_num_threads(1)
    prompts = eval_prompts()
    res = adherence(args.optimize, parse_set(args.sets), prompts=prompts, steps=args.steps, device="cpu")
    out = {"prompts": len(prompts), "steps": res["steps"], "applied": res["applied"], "all": res["scores"],
           "held_out": res["held_out"], "seconds": round(res["seconds"], 2)}
    if args.grid:
        from PIL import Image

        tiles = [(np.clip(im, 0, 1) * 255).astype(np.uint8) for im in res["images"]]
        rows = [np.concatenate(tiles[i:i + 8], axis=1) for i in range(0, len(tiles), 8)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.grid)
        out["grid"] = args.grid
    if args.json:
        print(json.dumps(out, indent=2))
        return
    s, h = res["scores"], res["held_out"]
    print(f"shapes adherence, {len(prompts)} prompts, {res['steps']} steps, optimizations: {res['applied'] or 'none'}")
    print(f"all      : fg {s['fg']:.2f} | bg {s['bg']:.2f} | shape {s['shape']:.2f} | all three {s['all']:.2f} "
          f"| mean IoU {s['mean_iou']:.2f}")
    print(f"held-out : fg {h['fg']:.2f} | bg {h['bg']:.2f} | shape {h['shape']:.2f} | all three {h['all']:.2f} "
          f"({h['n']} prompts)")
    print(f"targets: colours >= 0.90, shape >= 0.60; generation time {res['seconds']:.1f} s")


if __name__ == "__main__":
    main()
