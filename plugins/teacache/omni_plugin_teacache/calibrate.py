"""TeaCache calibration (the TeaCache authors' and vLLM-Omni's coefficient estimation, in our
words): run the model uncached, record per consecutive denoiser calls the relative L1 change of the
probe (x) and of the block stack's output (y), fit ``numpy.polyfit(x, y, 4)``.

The file records the model and whether its weights are random (a named test model) or trained; a fit
on random weights is unverified and serves only that model (see :mod:`.store`)."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from omni.sdk import HitFlags, Skip, UsageError, load, quiet_libraries

from omni_plugin_teacache import store
from omni_plugin_teacache.facts import DEFAULT_PROBE

DEFAULT_PROMPTS = [
    "a red circle on a blue background", "a green square on a white background",
    "a yellow triangle on a black background", "a photo of a cat sitting on a chair",
]


def read_prompts(prompts: Path | None) -> list[str]:
    if prompts is None:
        return DEFAULT_PROMPTS
    if not prompts.is_file():
        raise UsageError(f"--prompts {prompts} does not exist")
    lines = [ln.strip() for ln in prompts.read_text().splitlines() if ln.strip()]
    if not lines:
        raise UsageError(f"--prompts {prompts} holds no prompt")
    return lines


def weights_of(resolved: Any) -> tuple[str, str]:
    """(``random`` | ``trained``, why we know)."""
    if resolved.model is not None:
        return resolved.model.weights, f"declared by the named model {resolved.model.name}"
    return "trained", "not a named model: taken as a trained checkpoint"


def record(session, lines: list[str], steps: int, probe_name: str) -> tuple[list[float], list[float]]:
    """(x, y) pairs from uncached runs of every prompt."""
    import torch

    from omni_plugin_teacache.hooks import Installed, Settings
    from omni_plugin_teacache.impl import targets
    from omni_plugin_teacache.probes import PROBES, rel_l1

    records: dict[str, list[torch.Tensor]] = {"probe": [], "output": []}

    def recorder(kind: str, tensor) -> None:
        records[kind].append(tensor.detach().float().clone())

    try:
        found = targets(session.ctx)
    except Skip as exc:  # no denoiser, or blocks TeaCache cannot hook
        raise UsageError(f"cannot calibrate {session.family.name}: {exc}") from None
    # threshold 0: every call computes; the hooks only record
    settings = Settings(threshold=0.0, interval=0, force_last=True)
    installed = []
    xs: list[float] = []
    ys: list[float] = []
    try:
        for _, module, stack in found:
            installed.append(Installed(module, stack, probe=PROBES[probe_name], coefficients=(0, 0, 0, 0, 0),
                                       settings=settings, total_steps=lambda: None,
                                       flags=HitFlags(), recorder=recorder))
        defaults = session.prepared.generation_defaults()
        for i, prompt in enumerate(lines):
            records["probe"].clear()
            records["output"].clear()
            session.pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(i), output_type="latent",
                         **{**defaults, "num_inference_steps": steps})
            probes, outs = records["probe"], records["output"]
            # consecutive calls of the same context: with separate cond/uncond calls, compare every other
            stride = max(1, len(probes) // steps)
            for j in range(stride, min(len(probes), len(outs))):
                if probes[j].shape == probes[j - stride].shape:
                    xs.append(rel_l1(probes[j], probes[j - stride]))
                    ys.append(rel_l1(outs[j], outs[j - stride]))
    finally:
        for one in installed:
            one.remove()
    return xs, ys


def calibrate(model: str, *, prompts: Path | None, steps: int, output: Path | None) -> dict[str, Any]:
    quiet_libraries()
    lines = read_prompts(prompts)
    session = load(model)
    family = session.family
    probe_name = family.extras.get("teacache", {}).get("probe", DEFAULT_PROBE)
    xs, ys = record(session, lines, steps, probe_name)
    if len(xs) < 5:
        raise UsageError(f"only {len(xs)} calibration points; use more prompts or steps")
    x, y = np.asarray(xs), np.asarray(ys)
    coeffs = np.polyfit(x, y, 4)
    fit = np.poly1d(coeffs)(x)
    r2 = 1.0 - float(np.sum((y - fit) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12))
    resolved = session.prepared.resolved
    name = store.model_id(resolved)
    weights, weights_source = weights_of(resolved)
    path = Path(output) if output is not None else store.file_for(family.name, name)
    data = {
        "family": family.name, "probe": probe_name, "coefficients": [float(c) for c in coeffs],
        "model": name, "weights": weights, "weights_source": weights_source,
        "prompts": len(lines), "steps": steps, "points": int(len(xs)), "r2": r2,
        "x_range": [float(x.min()), float(x.max())], "date": _dt.date.today().isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    data["path"] = str(path)
    return data


def scope(data: dict[str, Any]) -> str:
    """One line: which runs the calibration serves."""
    if data["weights"] == "random":
        return (f"fitted on RANDOM weights ({data['model']}): unverified; TeaCache uses it only for runs of "
                f"{data['model']}, or for another model with teacache.calibration={data['path']}")
    return f"fitted on trained weights ({data['model']}): TeaCache uses it for every {data['family']} model"
