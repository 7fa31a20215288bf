import json

import numpy as np
import pytest
from omni.testing import FamilyConformance


class TestFlux2Family(FamilyConformance):
    family = "flux2"
    pipeline_class = "Flux2Pipeline"
    tiny_model = "tiny-flux2"
    hub_ids = ("black-forest-labs/FLUX.2-dev",)
    expected_shape = (1, 64, 64, 3)


class TestFlux2KleinFamily(FamilyConformance):
    family = "flux2_klein"
    pipeline_class = "Flux2KleinPipeline"
    tiny_model = "tiny-flux2-klein"
    hub_ids = ("black-forest-labs/FLUX.2-klein-4B", "black-forest-labs/FLUX.2-klein-base-9B")
    expected_shape = (1, 64, 64, 3)


@pytest.fixture(scope="module")
def registry():
    from omni.plugins import Selection, load_registry

    return load_registry(selection=Selection(), strict=False)


@pytest.mark.parametrize("pipeline, family", [("Flux2Pipeline", "flux2"), ("Flux2KleinPipeline", "flux2_klein"),
                                              ("Flux2KleinInpaintPipeline", "flux2_klein"), ("FluxPipeline", "flux")])
def test_each_flux_generation_goes_to_its_own_family(registry, tmp_path, pipeline, family):
    from omni.resolve import resolve_model

    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": pipeline}))
    assert resolve_model(str(tmp_path), registry).family == family


def test_hub_patterns_do_not_cross_generations(registry):
    from omni.resolve import resolve_model

    assert resolve_model("black-forest-labs/FLUX.1-dev", registry).family == "flux"
    assert resolve_model("black-forest-labs/FLUX.2-dev", registry).family == "flux2"
    assert resolve_model("black-forest-labs/FLUX.2-klein-9B", registry).family == "flux2_klein"


def test_tiny_tokenizers_write_the_real_prompt_layouts():
    """Flux2Pipeline formats [system, user] turns with Mistral's control tokens; Flux2KleinPipeline asks Qwen3 for
    a non-thinking assistant turn."""
    from omni.sdk import tiny
    from omni_family_flux2.tiny import mistral_tokenizer

    messages = [{"role": "system", "content": [{"type": "text", "text": "be brief"}]},
                {"role": "user", "content": [{"type": "text", "text": "a cat"}]}]
    assert mistral_tokenizer().apply_chat_template(messages, tokenize=False) == \
        "<s>[SYSTEM_PROMPT]be brief[/SYSTEM_PROMPT][INST]a cat[/INST]"
    qwen = tiny.qwen2_tokenizer(chat_template=tiny.QWEN_CHAT_TEMPLATE)
    text = qwen.apply_chat_template([{"role": "user", "content": "a cat"}], tokenize=False,
                                    add_generation_prompt=True, enable_thinking=False)
    assert text == "<|im_start|>user\na cat<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def test_klein_runs_cfg_as_two_calls_in_cache_contexts():
    """The fact that separates the two families: [klein] base calls the transformer twice per step, under the
    "cond" and "uncond" cache contexts; [dev] once, outside any context."""
    import torch
    from diffusers import DiffusionPipeline
    from omni.behaviour import resolve
    from omni.plugins import get_registry

    seen = {}
    for model in ("tiny-flux2", "tiny-flux2-klein"):
        spec = get_registry().models[model.replace("-", "_")].spec
        pipe = DiffusionPipeline.from_pretrained(str(resolve(spec.build)()), local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        contexts = []
        pipe.transformer.register_forward_pre_hook(
            lambda module, args, seen_here=contexts: seen_here.append(getattr(module, "_omni_test_context", None)))
        original = pipe.transformer.cache_context

        def cache_context(name, original=original, module=pipe.transformer):
            module._omni_test_context = name
            return original(name)

        pipe.transformer.cache_context = cache_context
        pipe(prompt="a cat", generator=torch.Generator().manual_seed(0), output_type="np",
             **{**dict(spec.default_generation), "num_inference_steps": 2})
        seen[model] = contexts
    assert seen["tiny-flux2"] == [None, None]
    assert seen["tiny-flux2-klein"] == ["cond", "uncond", "cond", "uncond"]


@pytest.mark.parametrize("model, task, inputs", [
    ("tiny-flux2", "edit", {"image"}),
    ("tiny-flux2-klein", "edit", {"image"}),
    ("tiny-flux2-klein", "inpaint", {"image", "mask"}),
])
def test_tasks_run_from_the_loaded_components(model, task, inputs):
    import omni

    image = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1.0
    given = {"image": image, "mask": mask}
    result = omni.run(model, task=task, **{k: given[k] for k in inputs})
    assert result.output.shape == (1, 64, 64, 3) and np.isfinite(result.output).all()
