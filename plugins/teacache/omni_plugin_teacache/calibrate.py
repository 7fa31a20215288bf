"""TeaCache calibration (vLLM-Omni's coefficient_estimator, in our words): run the model uncached,
record per consecutive denoiser calls the relative L1 change of the probe (x) and of the block
stack's output (y), fit ``numpy.polyfit(x, y, 4)``."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from omni.errors import UsageError

DEFAULT_PROMPTS = [
    "a red circle on a blue background", "a green square on a white background",
    "a yellow triangle on a black background", "a photo of a cat sitting on a chair",
]


def calibrate(model: str, *, prompts: Path | None, steps: int, output: Path | None, registry) -> dict[str, Any]:
    import torch

    from omni.loading import quiet_libraries
    from omni.runtime.api import prepare
    from omni.runtime.context import RunContext
    from omni.runtime.executor import Executor
    from omni_plugin_teacache import store
    from omni_plugin_teacache.hooks import block_list, check_blocks, install
    from omni_plugin_teacache.probes import PROBES, rel_l1

    quiet_libraries()
    lines = DEFAULT_PROMPTS
    if prompts is not None:
        if not prompts.is_file():
            raise UsageError(f"--prompts {prompts} does not exist")
        lines = [ln.strip() for ln in prompts.read_text().splitlines() if ln.strip()]
        if not lines:
            raise UsageError(f"--prompts {prompts} holds no prompt")
    prep = prepare(model, {}, registry=registry)
    family = registry.family(prep.resolved.family).spec
    facts = family.facts.teacache
    probe_name = facts.probe if facts else "block0-input"
    ctx = RunContext(model=prep.resolved, family=family, env=prep.env, device="cpu", dtype="float32")
    pipe = Executor(registry).load(ctx)
    ctx.pipe = pipe
    records: dict[str, list[torch.Tensor]] = {"probe": [], "output": []}

    def recorder(kind: str, tensor) -> None:
        records[kind].append(tensor.detach().float().clone())

    removers = []
    for name, module in ctx.denoisers():
        blocks = block_list(module, family.facts.block_attrs)
        try:
            check_blocks(blocks)
        except ValueError as exc:
            raise UsageError(f"cannot calibrate {family.name}: {exc}") from None
        # threshold 0 and zero coefficients: every call computes; the hooks only record
        removers.append(install(module, blocks, probe=PROBES[probe_name], coefficients=(0, 0, 0, 0, 0),
                                threshold=0.0, interval=0, force_last=True, total_steps=lambda: None, flags=[],
                                recorder=recorder))
    defaults = dict(prep.resolved.model.default_generation) if prep.resolved.model else dict(family.default_generation)
    xs, ys = [], []
    try:
        for i, prompt in enumerate(lines):
            records["probe"].clear()
            records["output"].clear()
            pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(i), output_type="latent",
                 **{**defaults, "num_inference_steps": steps})
            probes, outs = records["probe"], records["output"]
            # consecutive calls of the same context: with separate cond/uncond calls, compare every other
            stride = max(1, len(probes) // steps)
            for j in range(stride, min(len(probes), len(outs))):
                if probes[j].shape == probes[j - stride].shape:
                    xs.append(rel_l1(probes[j], probes[j - stride]))
                    ys.append(rel_l1(outs[j], outs[j - stride]))
    finally:
        for remove in removers:
            remove()
    if len(xs) < 5:
        raise UsageError(f"only {len(xs)} calibration points; use more prompts or steps")
    x, y = np.asarray(xs), np.asarray(ys)
    coeffs = np.polyfit(x, y, 4)
    fit = np.poly1d(coeffs)(x)
    r2 = 1.0 - float(np.sum((y - fit) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12))
    path = output or store.store_dir() / f"{family.name}.json"
    data = {
        "family": family.name, "probe": probe_name, "coefficients": [float(c) for c in coeffs],
        "model": model, "prompts": len(lines), "steps": steps, "points": int(len(xs)), "r2": r2,
        "x_range": [float(x.min()), float(x.max())], "date": _dt.date.today().isoformat(),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    data["path"] = str(path)
    return data
