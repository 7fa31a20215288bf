"""lora / lora_fused: loading, per-request switching (LRU), validation with one-line errors, undo.
Interactions (compile hot-swap, quantizers, caches, prompt cache) are in test_plugin_lora_interactions.py;
the shipped shapes adapter's effect in test_plugin_lora_shapes.py."""

import subprocess
import sys

import numpy as np
import pytest

import omni
from omni.errors import UsageError
from omni.testing import OptimizationConformance

PROMPT = "a red circle on a blue background"


class TestLora(OptimizationConformance):
    optimization = "lora"
    run_verification = False  # tests/verified runs every supported cell


class TestLoraFused(OptimizationConformance):
    optimization = "lora_fused"
    run_verification = False


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """a: rank 4 on to_q/to_k/to_v/to_out.0; b: rank 8 on to_q/to_k (fits a's hot-swap slot)."""
    from omni_plugin_lora.verify import random_adapter

    folder = tmp_path_factory.mktemp("lora-library")
    random_adapter("tiny-flux", folder / "a.safetensors", rank=4, seed=1)
    random_adapter("tiny-flux", folder / "b.safetensors", rank=8, seed=2, targets=("to_q", "to_k"))
    return folder


@pytest.fixture(scope="module")
def base():
    return omni.run("tiny-flux", PROMPT, seed=0).images


def _engine(**sets):
    return omni.Engine("tiny-flux", optimize=["lora"], sets=sets, prompt_cache=False)


def _gen(engine, **kw):
    return engine.generate(PROMPT, seed=0, **kw)


def test_switching_per_request_matches_loading_and_restores(library, base):
    with omni.Engine("tiny-flux", optimize=["lora"], sets={"lora.paths": f"{library / 'b.safetensors'}:0.5"},
                     prompt_cache=False) as only_b:
        b_loaded = _gen(only_b).images
    with _engine(**{"lora.paths": f"{library / 'a.safetensors'}", "lora.library": str(library)}) as engine:
        a = _gen(engine).images
        assert np.abs(a - base).max() > 1e-3  # the adapter changes the output
        switched = _gen(engine, options={"lora.adapters": "b:0.5"})
        np.testing.assert_allclose(switched.images, b_loaded, atol=1e-6)
        assert switched.report.result("lora").options["adapters"] == "b:0.5"
        assert any("lora.adapters=b:0.5" in n for n in switched.report.notes)
        np.testing.assert_array_equal(_gen(engine).images, a)  # load-time adapters restored after the request
        both = _gen(engine, options={"lora.adapters": "a:1,b:0.5"}).images
        assert np.abs(both - a).max() > 1e-4 and np.abs(both - b_loaded).max() > 1e-4
        np.testing.assert_array_equal(_gen(engine, options={"lora.adapters": "a:0"}).images, base)
        np.testing.assert_array_equal(_gen(engine, options={"lora.adapters": "none"}).images, base)


def test_lru_keeps_at_most_max_loaded(library):
    with _engine(**{"lora.paths": "a", "lora.library": str(library), "lora.max_loaded": 1}) as engine:
        _gen(engine, options={"lora.adapters": "b"})
        details = engine.session.ctx.applied["lora"].details
        # b evicted a, and the restore after the request evicted b to bring a back
        assert details["loaded"] == ["a"] and details["evictions"] == 2 and details["loads"] == 3
        with pytest.raises(UsageError, match="2 adapters asked for, lora.max_loaded is 1"):
            _gen(engine, options={"lora.adapters": "a,b"})


def test_unknown_adapter_fails_the_request_not_the_engine(library, base):
    with _engine(**{"lora.paths": "a", "lora.library": str(library)}) as engine:
        a = _gen(engine).images
        with pytest.raises(UsageError, match="no adapter is named 'nope' in lora.paths, lora.library"):
            _gen(engine, options={"lora.adapters": "nope"})
        with pytest.raises(UsageError, match="is not an adapter name"):
            _gen(engine, options={"lora.adapters": "/etc/passwd"})  # requests name adapters, never files
        np.testing.assert_array_equal(_gen(engine).images, a)


def test_fused_matches_unfused_and_leaves_no_lora_layer(library):
    with _engine(**{"lora.paths": f"{library / 'a.safetensors'}:0.8"}) as engine:
        unfused = _gen(engine).images
    result = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora_fused"],
                      sets={"lora_fused": f"{library / 'a.safetensors'}:0.8"})
    res = result.report.result("lora_fused")
    assert res.status == "applied" and res.details["reversible"] is False
    np.testing.assert_allclose(result.images, unfused, atol=1e-5)
    from peft.tuners.tuners_utils import BaseTunerLayer

    assert not any(isinstance(m, BaseTunerLayer) for m in result.pipe.transformer.modules())


def test_undo_restores_the_pipeline(library):
    from omni.plugins import get_registry
    from omni.runtime.fingerprint import diff, fingerprint

    args = dict(get_registry().model("tiny-flux").spec.default_generation)
    base = omni.run("tiny-flux", PROMPT, seed=0)
    before = fingerprint(base.pipe)
    handle = omni.optimize(base.pipe, optimize=["lora"], sets={"lora.paths": str(library / "a.safetensors")})
    assert handle.report.result("lora").details["reversible"] is True
    assert np.abs(handle.generate(PROMPT, seed=0, **args).output - base.images).max() > 1e-3
    assert handle.undo() == []
    after = fingerprint(base.pipe)
    # the scheduler's timesteps belong to the generations in between, not to the adapter
    assert diff(*({k: v for k, v in f.items() if not k.startswith("scheduler")} for f in (before, after)),
                undone=True) == []
    np.testing.assert_array_equal(handle.generate(PROMPT, seed=0, **args).output, base.images)


def test_config_key_and_yaml_forms(tmp_path):
    from omni.config import resolve_config
    from omni.plugins import get_registry

    reg = get_registry()
    cfg = resolve_config(reg, sets={"lora": "/x/a.safetensors:0.8"})
    assert cfg.requested["lora"]["paths"] == ("/x/a.safetensors:0.8",)
    cfg = resolve_config(reg, {"lora": ["a.safetensors:0.8", "teal=b.safetensors"]})
    assert cfg.requested["lora"]["paths"] == ("a.safetensors:0.8", "teal=b.safetensors")
    cfg = resolve_config(reg, {"lora_fused": "a.safetensors"})
    assert cfg.requested["lora_fused"]["paths"] == ("a.safetensors",)


def test_entries_parse():
    from omni_plugin_lora.library import parse_active, parse_entry

    assert parse_entry("/m/a.safetensors:0.8", "w") == (None, "/m/a.safetensors", 0.8)
    assert parse_entry("teal=shapes-teal", "w") == ("teal", "shapes-teal", 1.0)
    assert parse_entry("x.safetensors:-1e-1", "w") == (None, "x.safetensors", -0.1)
    assert parse_active("", "w") is None and parse_active("none", "w") == []
    assert parse_active("a:0.5, b", "w") == [("a", 0.5), ("b", 1.0)]
    with pytest.raises(UsageError, match="named twice"):
        parse_active("a,a", "w")
    with pytest.raises(UsageError, match="is not a number"):
        parse_active("a:x", "w")


def _broken(library, tmp_path, name, edit):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(library / "a.safetensors", "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        metadata = fh.metadata()
    tensors, metadata = edit(tensors, dict(metadata))
    path = tmp_path / name
    save_file(tensors, path, metadata=metadata)
    return path


def test_bad_files_are_one_line_usage_errors(library, tmp_path):
    import torch

    cases = {"missing": (tmp_path / "missing.safetensors", "does not exist|is not a file")}
    text = tmp_path / "notes.txt"
    text.write_text("x")
    cases["not safetensors"] = (text, "is not a .safetensors file")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    cases["corrupt"] = (garbage, "is not a readable safetensors file")

    def wrong_family(t, m):
        return t, {**m, "omni.family": "sd15"}

    def wrong_size(t, m):
        key = next(k for k in t if k.endswith("attn.to_q.lora_A.weight"))
        return {**t, key: torch.zeros(t[key].shape[0], t[key].shape[1] * 2)}, m

    def missing_module(t, m):
        return {k.replace("transformer_blocks.0.", "transformer_blocks.7."): v for k, v in t.items()}, m

    cases["wrong family"] = (_broken(library, tmp_path, "fam.safetensors", wrong_family),
                             "was trained for the sd15 family; this model is flux")
    cases["wrong size"] = (_broken(library, tmp_path, "size.safetensors", wrong_size),
                           r"attn.to_q has input size \d+ but the adapter's lora_A has shape")
    cases["missing module"] = (_broken(library, tmp_path, "mod.safetensors", missing_module),
                               r"targets transformer\.(single_)?transformer_blocks\.7\.")
    for label, (path, pattern) in cases.items():
        with pytest.raises(UsageError, match=pattern):
            omni.run("tiny-flux", PROMPT, optimize=["lora"], sets={"lora.paths": str(path)})


def test_cli_bad_adapter_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "omni", "run", "tiny-flux", "--prompt", "x", "--set",
                           f"lora={tmp_path / 'nope.safetensors'}:0.8", "--output", str(tmp_path / "o.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "nope.safetensors" in lines[0], proc.stderr


def test_nothing_to_load_is_refused():
    with pytest.raises(UsageError, match="lora needs an adapter"):
        omni.run("tiny-flux", PROMPT, optimize=["lora"])
