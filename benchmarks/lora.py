"""LoRA: switching cost, fused vs unfused step time, and what the shipped shapes-teal adapter does.

* ``--part switch`` (medium-flux, two random rank-16 attention adapters): the time to change the active
  adapter between requests — omni's resident switch (both loaded, ``set_adapters``), omni's hot-swap
  (weights copied into a slot, ``load_lora_weights(hotswap=True)``) and a reload (``unload_lora_weights``
  + ``load_lora_weights``, what a pipeline without omni does) — paired and interleaved; then, under
  regional ``torch.compile`` (inductor), the first generation after a hot-swap vs after a reload (a
  reload replaces the LoRA modules, so dynamo recompiles).
* ``--part speed`` (medium-flux): warm generation time unfused vs fused, and fused vs no adapter.
* ``--part adherence`` (shapes): teal prompts with and without the adapter, base prompts with the
  adapter at scale 1 and at scale 0 (per request; max |Δ| to the adapter-free output).

Ratios: median of paired runs with the 95 % interval of ``omni.stats``.
Usage: python benchmarks/lora.py [--part switch,speed,adherence] [--steps 4] [--size 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle on a blue background"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _adapters(folder: Path) -> dict[str, Path]:
    from omni_plugin_lora.verify import random_adapter

    return {n: random_adapter("medium-flux", folder / f"{n}.safetensors", rank=16, seed=i)
            for i, n in enumerate(("a", "b"))}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def switch(folder: Path, steps: int, size: int, compile_cycles: int) -> dict:
    import omni
    from omni.stats import Stopping, repeat_pairs

    paths = _adapters(folder)
    gen = {"num_inference_steps": steps, "height": size, "width": size}
    sets = {"lora.paths": "a", "lora.library": str(folder)}
    out: dict = {}
    with omni.Engine("medium-flux", optimize=["lora"], sets=sets, prompt_cache=False) as resident, \
            omni.Engine("medium-flux", optimize=["lora"], sets={**sets, "lora.paths": "a"}, prompt_cache=False,
                        lazy=True) as plain:
        plain.load()
        res_switch = resident.session.ctx.applied["lora"].reconfigure
        res_switch({"adapters": "b"})  # load b once: from here both stay loaded
        pipe = plain.pipe
        state = {"res": "b", "reload": "a"}

        def resident_once(_: int) -> float:
            state["res"] = "a" if state["res"] == "b" else "b"
            return _timed(lambda: res_switch({"adapters": state["res"]}))

        def reload_once(_: int) -> float:
            state["reload"] = "a" if state["reload"] == "b" else "b"

            def go():
                pipe.unload_lora_weights()
                pipe.load_lora_weights(str(paths[state["reload"]]), adapter_name=state["reload"])

            return _timed(go)

        ratio, why = repeat_pairs(resident_once, reload_once, Stopping(min_pairs=8, max_pairs=20, max_seconds=120))
        out["reload_over_resident_switch"] = {**ratio.to_dict(), "stopped": why, "text": ratio.text()}
        log(f"reload / resident switch: {ratio.text()}")
    # hot-swap, measured on a hot-swap engine (compile planned, so the step prepares slots) without running
    # a generation in between: the swap itself
    with omni.Engine("medium-flux", optimize=["lora", "compile"], sets={**sets, "compile.backend": "inductor"},
                     prompt_cache=False) as hot, \
            omni.Engine("medium-flux", optimize=["lora"], sets=sets, prompt_cache=False) as other:
        swap = hot.session.ctx.applied["lora"].reconfigure
        pipe = other.pipe
        state = {"hot": "a", "reload": "a"}

        def hot_once(_: int) -> float:
            state["hot"] = "a" if state["hot"] == "b" else "b"
            return _timed(lambda: swap({"adapters": state["hot"]}))

        def reload_once2(_: int) -> float:
            state["reload"] = "a" if state["reload"] == "b" else "b"

            def go():
                pipe.unload_lora_weights()
                pipe.load_lora_weights(str(paths[state["reload"]]), adapter_name=state["reload"])

            return _timed(go)

        ratio, why = repeat_pairs(hot_once, reload_once2, Stopping(min_pairs=8, max_pairs=20, max_seconds=120))
        out["reload_over_hotswap"] = {**ratio.to_dict(), "stopped": why, "text": ratio.text()}
        log(f"reload / hot-swap: {ratio.text()}")
        # under compile: the generation after a hot-swap vs after a reload (same compiled engine)
        swap({"adapters": "a"})
        hot.generate(PROMPT, seed=0, **gen)  # compiles
        warm = _timed(lambda: hot.generate(PROMPT, seed=0, **gen))
        after_swap, after_reload = [], []
        for i in range(compile_cycles):
            swap({"adapters": "b" if i % 2 == 0 else "a"})
            after_swap.append(_timed(lambda: hot.generate(PROMPT, seed=0, **gen)))
            log(f"compiled: generation after hot-swap {after_swap[-1]:.2f} s (warm {warm:.2f} s)")
        hp = hot.pipe
        for i in range(compile_cycles):
            name = "b" if i % 2 == 0 else "a"
            hp.unload_lora_weights()
            hp.load_lora_weights(str(paths[name]), adapter_name=f"reload_{i}")
            after_reload.append(_timed(lambda: hot.generate(PROMPT, seed=0, **gen)))
            log(f"compiled: generation after reload {after_reload[-1]:.2f} s")
        out["compiled"] = {"warm_generation_s": round(warm, 3), "after_hotswap_s": [round(x, 3) for x in after_swap],
                           "after_reload_s": [round(x, 3) for x in after_reload], "steps": steps, "size": size}
    return out


def speed(folder: Path, steps: int, size: int) -> dict:
    import omni
    from omni.stats import Stopping, repeat_pairs

    path = _adapters(folder)["a"]
    gen = {"num_inference_steps": steps, "height": size, "width": size}
    engines = {"base": omni.Engine("medium-flux", prompt_cache=False),
               "unfused": omni.Engine("medium-flux", optimize=["lora"], sets={"lora.paths": str(path)},
                                      prompt_cache=False),
               "fused": omni.Engine("medium-flux", optimize=["lora_fused"], sets={"lora_fused.paths": str(path)},
                                    prompt_cache=False)}
    try:
        for e in engines.values():
            e.generate(PROMPT, seed=0, **gen)  # warm-up

        def run(name):
            return lambda i: engines[name].generate(PROMPT, seed=i, **gen).report.timings["generate"]

        out = {}
        for a, b in (("fused", "unfused"), ("base", "fused")):
            ratio, why = repeat_pairs(run(a), run(b), Stopping(min_pairs=8, max_pairs=20, max_seconds=240))
            out[f"{b}_over_{a}"] = {**ratio.to_dict(), "stopped": why, "text": ratio.text()}
            log(f"{b} / {a} generation time: {ratio.text()}")
        return {**out, "steps": steps, "size": size}
    finally:
        for e in engines.values():
            e.close()


def adherence(seeds: int) -> dict:
    import numpy as np

    import omni
    from omni_model_shapes.evaluate import eval_prompts

    from omni_plugin_lora import teal

    teal_items = teal.prompts(seeds)
    base_items = eval_prompts()
    out = {}
    with omni.Engine("shapes", prompt_cache=False) as plain:
        base_plain = teal.evaluate(plain, base_items)
        teal_plain = teal.evaluate(plain, teal_items)
    with omni.Engine("shapes", optimize=["lora"], sets={"lora.paths": teal.ADAPTER}, prompt_cache=False) as engine:
        teal_on = teal.evaluate(engine, teal_items)
        base_on = teal.evaluate(engine, base_items)
        base_zero = teal.evaluate(engine, base_items, {"lora.adapters": f"{teal.ADAPTER}:0"})
    delta = max(float(np.abs(a - b).max()) for a, b in zip(base_zero["images"], base_plain["images"]))
    for label, res in (("teal prompts, no adapter", teal_plain), ("teal prompts, adapter", teal_on),
                       ("base prompts, no adapter", base_plain), ("base prompts, adapter", base_on),
                       ("base prompts, adapter at scale 0", base_zero)):
        out[label] = {k: v for k, v in res.items() if k != "images"}
        log(f"{label}: {out[label]['all']}")
    out["scale0_max_abs_delta"] = delta
    out["prompts"] = {"teal": len(teal_items), "base": len(base_items)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="switch,speed,adherence")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--compile-cycles", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2, help="seeds per teal triple (24 triples)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    import omni

    torch.set_num_threads(1)
    result = {"date": time.strftime("%Y-%m-%d"), "omni": omni.__version__, "torch": torch.__version__, "threads": 1}
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        if "switch" in parts:
            result["switch"] = switch(Path(tmp) / "switch", args.steps, args.size, args.compile_cycles)
        if "speed" in parts:
            result["speed"] = speed(Path(tmp) / "speed", args.steps, args.size)
    if "adherence" in parts:
        result["adherence"] = adherence(args.seeds)
    print(json.dumps(result, indent=2) if args.json else json.dumps(result))


if __name__ == "__main__":
    main()
