"""LoRA with the rest of omni, as declared in omni_plugin_lora/plugin.py: hot-swap under compile (no
recompilation), quantizers (fuse first, or refused with the reason), QKV fusion, step caches, and the
prompt-embedding cache (keyed on the per-request options in effect)."""

import numpy as np
import pytest

import omni
from omni.errors import UsageError

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """a: rank 4 on attention; b: rank 8 on to_q/to_k (fits a's slot); ff: a layer a's slot lacks;
    strong: like a, moving the output far more than int8 rounding does."""
    from omni_plugin_lora.verify import random_adapter

    folder = tmp_path_factory.mktemp("lora-interactions")
    random_adapter("tiny-flux", folder / "a.safetensors", rank=4, seed=1)
    random_adapter("tiny-flux", folder / "b.safetensors", rank=8, seed=2, targets=("to_q", "to_k"))
    random_adapter("tiny-flux", folder / "ff.safetensors", rank=4, seed=3, targets=("proj_mlp",))
    random_adapter("tiny-flux", folder / "strong.safetensors", rank=4, seed=5, magnitude=20)
    return folder


def _gen(engine, **kw):
    return engine.generate(PROMPT, seed=0, **kw)


@pytest.fixture(scope="module")
def resident(library):
    """Reference outputs without compile: a, and b at 0.7 switched in per request."""
    with omni.Engine("tiny-flux", optimize=["lora"], sets={"lora.paths": "a", "lora.library": str(library)},
                     prompt_cache=False) as engine:
        return {"a": _gen(engine).images, "b": _gen(engine, options={"lora.adapters": "b:0.7"}).images}


@pytest.mark.slow
def test_hot_swap_under_compile_gives_the_new_adapter_without_recompiling(library, resident):
    from torch._dynamo.utils import counters

    from omni_plugin_lora.switch import lora_layers

    def graphs():
        return counters["stats"]["unique_graphs"]

    plain = omni.run("tiny-flux", PROMPT, seed=0).images
    sets = {"lora.paths": "a", "lora.library": str(library), "compile.backend": "eager"}
    with omni.Engine("tiny-flux", optimize=["lora", "compile"], sets=sets, prompt_cache=False) as engine:
        details = engine.load_report.result("lora").details
        assert details["mode"] == "hotswap" and details["hotswap_for"] == ["compile"]
        assert details["target_rank"] == 8  # b in the library is rank 8: the slot was padded for it
        before = graphs()
        np.testing.assert_allclose(_gen(engine).images, resident["a"], atol=1e-6)  # compiles here
        compiled = graphs()
        assert compiled > before
        np.testing.assert_allclose(_gen(engine, options={"lora.adapters": "b:0.7"}).images, resident["b"], atol=1e-6)
        np.testing.assert_allclose(_gen(engine).images, resident["a"], atol=1e-6)
        np.testing.assert_allclose(_gen(engine, options={"lora.adapters": "none"}).images, plain, atol=1e-6)
        assert graphs() == compiled  # three swaps and a zero scale: no new graph
        assert engine.session.ctx.applied["lora"].details["swaps"] == 2  # b in, a back after the request
        with pytest.raises(UsageError, match=r"ff cannot be hot-swapped: no free slot has layers on transformer\."):
            _gen(engine, options={"lora.adapters": "ff"})
        with pytest.raises(UsageError, match="2 adapters asked for; under compile there are 1 hot-swap slot"):
            _gen(engine, options={"lora.adapters": "a,b"})
        # the control: a Python float where the slot's tensor scale was (what set_adapters writes) recompiles
        layer = lora_layers([engine.pipe.transformer], "omni_slot_0")[0]
        layer.scaling["omni_slot_0"] = 0.5
        _gen(engine)
        assert graphs() > compiled


def test_compile_needs_a_load_time_adapter_to_shape_the_slots(library):
    with pytest.raises(UsageError, match="hot-swaps into slots shaped by lora.paths"):
        omni.Engine("tiny-flux", optimize=["lora", "compile"], sets={"lora.library": str(library),
                                                                     "compile.backend": "eager"})


@pytest.mark.parametrize("other", ["torchao", "torchao_load", "layerwise_casting", "fuse_qkv", "gguf"])
def test_unfused_conflicts_are_declared(other):
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry

    plan = CompatMatrix(get_registry()).plan("flux", ["lora", other])
    assert plan.names() == ["lora"]
    skipped = next(s for s in plan.skipped if s.name == other)
    assert skipped.status == "conflict" and skipped.reasons[0]


def test_fused_conflicts_only_with_load_time_quantization():
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry

    matrix = CompatMatrix(get_registry())
    assert matrix.plan("flux", ["lora_fused", "torchao", "fuse_qkv"]).names() == ["lora_fused", "fuse_qkv", "torchao"]
    for other in ("torchao_load", "gguf"):
        assert matrix.plan("flux", ["lora_fused", other]).names() == ["lora_fused"]


def test_fused_adapter_is_quantized_with_the_weights(library):
    from omni.verify import psnr

    sets = {"lora_fused": str(library / "strong.safetensors")}
    fused = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora_fused"], sets=sets).images
    both = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora_fused", "torchao"], sets=sets)
    assert [r.name for r in both.report.config_resolved if r.status == "applied"] == ["lora_fused", "torchao"]
    quant_only = omni.run("tiny-flux", PROMPT, seed=0, optimize=["torchao"]).images
    assert psnr(both.images, fused) >= 35.0  # int8 weight-only of the merged weights
    assert psnr(both.images, fused) > psnr(quant_only, fused) + 10  # and the adapter is in them


def test_fused_then_qkv_fusion_and_layerwise_casting(library):
    sets = {"lora_fused": str(library / "a.safetensors")}
    fused = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora_fused"], sets=sets).images
    qkv = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora_fused", "fuse_qkv"], sets=sets)
    assert qkv.report.result("fuse_qkv").status == "applied"
    np.testing.assert_allclose(qkv.images, fused, atol=1e-5)
    cast = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora_fused", "layerwise_casting"], sets=sets)
    assert cast.report.result("layerwise_casting").status == "applied"


def test_adapter_with_a_step_cache(library):
    gen = {"num_inference_steps": 6}
    sets = {"first_block_cache.threshold": 0.4}
    cache_only = omni.run("tiny-flux", PROMPT, seed=0, optimize=["first_block_cache"], sets=sets, **gen).images
    with omni.Engine("tiny-flux", optimize=["lora", "first_block_cache"], prompt_cache=False,
                     sets={**sets, "lora.paths": "a", "lora.library": str(library)}) as engine:
        first = engine.generate(PROMPT, seed=0, **gen)
        hits = [c for c in first.report.cache_hits if c["method"] == "first_block_cache"]
        assert hits and hits[0]["reused"] > 0
        assert np.abs(first.images - cache_only).max() > 1e-3  # the adapter acts under the cache
        switched = engine.generate(PROMPT, seed=0, options={"lora.adapters": "b"}, **gen).images
        assert np.abs(switched - first.images).max() > 1e-4
        np.testing.assert_array_equal(engine.generate(PROMPT, seed=0, **gen).images, first.images)


def test_prompt_cache_keys_on_the_adapters_in_effect(library):
    def text_hits(result):
        entry = next(c for c in result.report.cache_hits if c["method"] == "text_embedding")
        return entry["computed"], entry["reused"]

    with omni.Engine("tiny-flux", optimize=["lora"], sets={"lora.paths": "a", "lora.library": str(library)}) as engine:
        assert text_hits(_gen(engine))[0] >= 1  # first request: computed
        assert text_hits(_gen(engine))[0] == 0  # same adapters: reused
        assert text_hits(_gen(engine, options={"lora.adapters": "b"}))[0] >= 1  # other adapters: computed again
        assert text_hits(_gen(engine, options={"lora.adapters": "b"}))[0] == 0
        assert text_hits(_gen(engine))[0] == 0  # back to the load-time adapters: their entry


def _text_encoder_adapter(path):
    """A random LoRA on the CLIP text encoder of tiny-flux (peft directly, diffusers' file format)."""
    import torch
    from diffusers import FluxPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    from omni.sdk import model_folder, resolve

    torch.manual_seed(4)
    clip = CLIPTextModel.from_pretrained(f"{model_folder(resolve('tiny-flux'))}/text_encoder")
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    inject_adapter_in_model(config, clip)
    FluxPipeline.save_lora_weights(path.parent / "te", text_encoder_lora_layers=get_peft_model_state_dict(clip))
    return path.parent / "te" / "pytorch_lora_weights.safetensors"


def test_text_encoder_adapters_are_refused_where_transformers_cannot_load_them(tmp_path):
    from omni_plugin_lora.library import text_encoder_problem

    problem = text_encoder_problem()
    if problem is None:
        pytest.skip("this environment loads text-encoder LoRA layers (see the test below)")
    te = _text_encoder_adapter(tmp_path / "te.safetensors")
    with pytest.raises(UsageError, match="has text_encoder layers: transformers .* loads text-encoder LoRA layers "
                                         "only with peft >="):
        omni.run("tiny-flux", PROMPT, optimize=["lora"], sets={"lora.paths": str(te)})


def test_a_text_encoder_adapter_never_serves_stale_embeddings(tmp_path):
    from omni_plugin_lora.library import text_encoder_problem

    problem = text_encoder_problem()
    if problem is not None:
        pytest.skip(problem)
    te = _text_encoder_adapter(tmp_path / "te.safetensors")
    library = te.parent
    (library / "pytorch_lora_weights.safetensors").rename(library / "te.safetensors")
    with omni.Engine("tiny-flux", optimize=["lora"], sets={"lora.library": str(library)}) as engine:
        plain = _gen(engine).images
        with_te = _gen(engine, options={"lora.adapters": "te"}).images
        np.testing.assert_array_equal(_gen(engine).images, plain)
    fresh = omni.run("tiny-flux", PROMPT, seed=0, optimize=["lora"], sets={"lora.paths": str(library / "te.safetensors")})
    np.testing.assert_allclose(with_te, fresh.images, atol=1e-6)
    assert np.abs(with_te - plain).max() > 1e-4
