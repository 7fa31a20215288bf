"""One rank (or the single-process reference) of tests/plugins/test_plugin_cfg_parallel.py:
``python cfg_parallel_worker.py OUT.npz [parallel]``. Runs the requests of ``CASES`` on one Engine per
model and saves the images and, with ``parallel``, how many denoiser calls this rank computed and left to
its peer, then undoes the optimization and records whether the pipeline is as before."""

import json
import sys

import numpy as np
import torch

import omni

CASES = {  # model -> requests (one torch thread, small step counts: the box has 2 cores)
    "shapes": [{"num_inference_steps": 6, "seed": 3},  # true CFG: two calls a step
               {"num_inference_steps": 4, "seed": 3, "extra": {"true_cfg_scale": 1.0}}],  # no CFG: one call
    "tiny-sd15": [{"num_inference_steps": 4, "seed": 5, "guidance_scale": 6.0}],  # batched CFG
}


def main(out: str, parallel: bool) -> None:
    from diffusers.hooks import HookRegistry

    torch.set_num_threads(1)
    saved, counts = {}, {}
    for model, requests in CASES.items():
        engine = omni.Engine(model, optimize=["cfg_parallel"] if parallel else [])
        denoiser = engine.pipe.transformer if hasattr(engine.pipe, "transformer") else engine.pipe.unet
        hook = HookRegistry.check_if_exists_or_initialize(denoiser).get_hook("omni_cfg_parallel")
        for i, request in enumerate(requests):
            before = (hook.lockstep.computed, hook.lockstep.left_to_peer) if hook else (0, 0)
            result = engine.generate("a red circle", **request)
            saved[f"{model}-{i}"] = result.images
            if hook is not None:
                counts[f"{model}-{i}"] = {"computed": hook.lockstep.computed - before[0],
                                          "left_to_peer": hook.lockstep.left_to_peer - before[1],
                                          "split": hook.lockstep.split}
        if parallel:
            applied = engine.load_report.result("cfg_parallel")
            counts[f"{model}-applied"] = {"status": applied.status, "details": applied.details}
            scheduler = engine.pipe.scheduler
            engine.session.undo()
            counts[f"{model}-undone"] = {
                "hook": HookRegistry.check_if_exists_or_initialize(denoiser).get_hook("omni_cfg_parallel") is not None,
                "scheduler_wrapped": "step" in vars(scheduler) or "set_timesteps" in vars(scheduler)}
        engine.close()
    np.savez(out, **saved)
    with open(out + ".json", "w") as fh:
        json.dump(counts, fh, default=str)


if __name__ == "__main__":
    main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "parallel")
