"""The generic family on diffusers pipelines no family claims (issue 16, section 2).

Each pipeline of ``generic_pipelines.PIPELINES`` is built tiny with random weights, offline, and saved. Then:

* ``omni capabilities FOLDER --json`` resolves it to the generic family with torch, diffusers and transformers
  unimportable (the inspection path reads ``model_index.json`` only);
* a plain ``omni.run`` works, and the report says what was inferred, before and after loading;
* every optimization the plan marks runnable once the modules are loaded (cell ``untested``) is run alone:
  it applies, or it is skipped with a reason; never an exception. The options it needs come from its own
  declaration (``verify_overrides``, ``verify_prepare``), as ``omni verify`` gets them; compile runs with
  the ``eager`` backend (dynamo traces and guards as with inductor, without inductor's code generation).

``KNOWN`` lists the cells that fail today, each with the reason and the plugin that owns the fix; the test
checks that they still fail that way, so a fix shows up here as a failure to remove the entry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("generic_pipelines", Path(__file__).with_name("generic_pipelines.py"))
generic_pipelines = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(generic_pipelines)
PIPELINES = {t.name: t for t in generic_pipelines.PIPELINES}

TEST_OPTIONS = {"compile": {"backend": "eager"}}

_TORCHAO = ("omni-plugin-torchao quantizes every Linear, but HunyuanDiT's attention pool passes its projection "
            "weights to F.multi_head_attention_forward, which Int8Tensor does not implement")
_SAG = ("omni-plugin-diffusers-cache: StableDiffusionSAGPipeline calls its UNet twice per step with different "
        "batch sizes (CFG batch, then the degraded self-attention-guidance batch), outside any cache_context; "
        "the attention cache hands the second call the first call's output")
# (pipeline, optimization) -> (text of the one-line error, why)
KNOWN = {
    ("HunyuanDiTPipeline", "torchao"): ("Int8Tensor dispatch", _TORCHAO),
    ("HunyuanDiTPipeline", "torchao_load"): ("Int8Tensor dispatch", _TORCHAO),
    ("StableDiffusionSAGPipeline", "pyramid_attention_broadcast"): ("generation failed: RuntimeError", _SAG),
    ("StableDiffusionSAGPipeline", "taylorseer_cache"): ("generation failed: RuntimeError", _SAG),
}

_FOLDERS: dict[str, str] = {}


def folder(name: str) -> str:
    if name not in _FOLDERS:
        _FOLDERS[name] = str(PIPELINES[name].build())
    return _FOLDERS[name]


def test_ten_classes_no_family_claims(omni_registry):
    """At least ten classes, image and video, DiT and UNet, none claimed by an installed family."""
    claimed = {c for d in omni_registry.families.values() for c in d.spec.pipelines}
    assert not claimed & set(PIPELINES)
    tinies = PIPELINES.values()
    assert len(PIPELINES) >= 10
    assert sum(t.modality == "video" for t in tinies) >= 3 and sum(t.kind == "unet" for t in tinies) >= 3
    assert {t.modality for t in tinies} == {"image", "video"} and {t.kind for t in tinies} == {"dit", "unet"}


@pytest.fixture(scope="module")
def blockers(tmp_path_factory):
    """A PYTHONPATH entry whose torch, diffusers and transformers raise on import."""
    root = tmp_path_factory.mktemp("blockers")
    for name in ("torch", "diffusers", "transformers"):
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(f"raise ImportError('{name} imported on the inspection path')\n")
    return str(root)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_capabilities_resolve_to_generic_without_torch(name, blockers):
    tiny = PIPELINES[name]
    env = {**os.environ, "PYTHONPATH": blockers + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "omni", "capabilities", folder(name), "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0 and "imported on the inspection path" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    assert data["model"]["family"] == "generic" and data["model"]["kind"] == "local"
    assert data["model"]["pipeline_class"] == name
    assert f"denoiser:{tiny.kind}" in data["family"]["traits"]
    assert f"modality:{tiny.modality}" in data["family"]["traits"]
    assert any(note.startswith(f"generic family for {name}:") for note in data["inferred"])
    assert {row["status"] for row in data["optimizations"]} <= {"untested", "unsupported", "unavailable"}


def _options(spec, model: str, workdir: Path) -> tuple[dict, str | None]:
    """The options ``omni verify`` would use for this optimization on this model, and why its preparation
    failed (None when it did not)."""
    from omni.behaviour import resolve

    options = dict(spec.verify_overrides)
    problem = None
    if spec.verify_prepare:
        try:
            options.update(resolve(spec.verify_prepare)(model, str(workdir)))
        except Exception as exc:  # noqa: BLE001 - reported with the cell's outcome
            problem = f"verify_prepare failed: {type(exc).__name__}: {exc}"
    options.update(TEST_OPTIONS.get(spec.name, {}))
    return options, problem


def _outcome(model: str, name: str, options: dict, call: dict) -> tuple[str, str]:
    """-> (applied | skipped | error, reason or one-line error)."""
    import omni
    from omni.errors import OmniError

    try:
        result = omni.run(model, optimize=[name], sets={f"{name}.{k}": v for k, v in options.items()}, **call)
    except OmniError as exc:
        text = str(exc)
        assert "\n" not in text.strip() and "Traceback" not in text, text
        return "error", text
    res = result.report.result(name)
    assert res is not None, f"{name} is not in the report"
    assert np.isfinite(result.output).all()
    return res.status, res.reason or ""


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PIPELINES))
def test_plain_run_then_each_runnable_optimization(name, tmp_path, capsys):
    import time

    import omni
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.runtime.execute import request_fields

    tiny = PIPELINES[name]
    model = folder(name)
    engine = omni.Engine(model, prompt_cache=False)
    try:
        plain = engine.generate(prompt="a red circle", **request_fields(tiny.call))
        registry = engine.prepared.registry  # after loading: carries the facts inferred from the modules
        facts = engine.family.facts
    finally:
        engine.close()
    assert plain.report.family == "generic" and np.isfinite(plain.output).all()
    frames = (tiny.call.get("num_frames") or tiny.call.get("video_length"),) if tiny.modality == "video" else ()
    assert plain.output.shape[1:-1] == frames + (tiny.call["height"], tiny.call["width"])
    assert any(n.startswith(f"generic family for {name}:") for n in plain.report.notes)
    assert any(n.startswith("from the loaded modules:") for n in plain.report.notes)
    assert (facts.denoiser, facts.modality) == (tiny.kind, tiny.modality)
    cells = CompatMatrix(registry, env=Environment.detect()).row("generic")
    runnable = [c.optimization for c in cells if c.status in ("untested", "supported")]
    assert runnable and not [c for c in cells if c.status == "supported"]  # nobody claims the generic family

    table, unexpected = [], []
    for opt in runnable:
        cpu = time.process_time()
        options, problem = _options(registry.optimization(opt).spec, model, tmp_path)
        status, reason = _outcome(model, opt, options, tiny.call)
        cpu = time.process_time() - cpu
        table.append(f"{name} | {opt} | {status} | {reason}" + (f" ({problem})" if problem else "") + f" | {cpu:.1f}")
        known = KNOWN.get((name, opt))
        if known is not None:
            if status != "error" or known[0] not in reason:
                unexpected.append(f"{opt}: listed in KNOWN ({known[1]}) but now {status}: {reason}")
        elif status == "error" or (status == "skipped" and not reason) or status not in ("applied", "skipped"):
            unexpected.append(f"{opt}: {status}: {reason or 'no reason'}")
    with capsys.disabled():
        print("\n" + "\n".join(table))
    assert not unexpected, "\n".join(unexpected)


def test_strict_is_checked_once_the_modules_are_loaded():
    """Latte's two block lists are interleaved, so no block list is claimed: a block cache is skipped with the
    reason after loading, and ``--strict`` refuses then (before loading the traits are not complete)."""
    import omni
    from omni.errors import StrictRefusal

    tiny = PIPELINES["LattePipeline"]
    result = omni.run(folder("LattePipeline"), optimize=["first_block_cache"], **tiny.call)
    res = result.report.result("first_block_cache")
    assert res.status == "skipped" and "blocks:list" in res.reason
    with pytest.raises(StrictRefusal, match="first_block_cache cannot be applied to generic"):
        omni.run(folder("LattePipeline"), optimize=["first_block_cache"], strict=True, **tiny.call)
