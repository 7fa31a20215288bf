"""Declarations validate themselves and are plain data (no torch import)."""

import subprocess
import sys

import pytest

from omni.errors import DeclarationError
from omni.specs import (Claim, ConfigKey, FamilyFacts, FamilySpec, Limits, ModelSpec, Needs, OptimizationSpec, Option,
                        PresetSpec, Stage, Support)


def test_option_coercion_and_ranges():
    opt = Option("thresh", "float", 0.2, "budget", min=0.0, max=1.0)
    assert opt.coerce("0.5") == 0.5
    with pytest.raises(ValueError, match="above the maximum"):
        opt.coerce(3)
    assert Option("on", "bool", False, "flag").coerce("yes") is True
    assert Option("d", "dtype", "bfloat16", "dtype").coerce("fp8") == "float8_e4m3fn"
    choice = Option("kind", "choice", "block_level", "k", choices=("block_level", "leaf_level"))
    with pytest.raises(ValueError, match="did you mean leaf_level"):
        choice.coerce("leaf_levl")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "Bad Name"}, "must match"),
        ({"stage": "teleport"}, "stage 'teleport'"),
        ({"lossless": False}, "tolerance_psnr"),
        ({"impl": "no-colon"}, "package.module:attribute"),
        ({"impl": None}, "must be a callable"),
        ({"options": Option("a", "int", 1, "x")}, "must be tuples"),
        ({"requires_traits": "blocks:list"}, "not the string"),
        ({"traits": {"x:y": "meaning"}}, "no family_traits"),
        ({"claims": {"Not A Name!": Claim(Support.SUPPORTED)}}, "claims key"),
        ({"config_keys": (ConfigKey("k", option="missing"),)}, "unknown option 'missing'"),
        ({"options": (Option("a", "int", 1, "x"), Option("a", "int", 2, "y"))}, "declared twice"),
    ],
)
def test_optimization_spec_rejects_bad_fields(kwargs, match):
    base = dict(name="ok", stage=Stage.CACHE, summary="s", lossless=True, impl="m:f")
    with pytest.raises(DeclarationError, match=match):
        OptimizationSpec(**{**base, **kwargs})


def test_other_validations():
    with pytest.raises(DeclarationError, match="PEP 508"):
        Needs(packages=("not a requirement!!",))
    with pytest.raises(DeclarationError, match="needs a reason"):
        Claim(Support.UNSUPPORTED)
    with pytest.raises(DeclarationError, match="denoiser 'rnn'"):
        FamilyFacts(denoiser="rnn", denoiser_components=("x",), modality="image", tasks=(), guidance="cfg")


def test_declarations_are_frozen():
    spec = OptimizationSpec(name="ok", stage="cache", summary="s", lossless=True, impl="m:f")
    assert spec.stage is Stage.CACHE
    with pytest.raises(Exception):
        spec.name = "other"  # type: ignore[misc]


def test_building_declarations_imports_no_torch():
    code = "import sys, omni.specs, omni.plugins, omni.matrix, omni.resolve, omni.sdk; " \
           "assert not {'torch','diffusers','transformers'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True)


FACTS = dict(denoiser="dit", denoiser_components=("transformer",), modality="image", tasks=("t2i",), guidance="cfg")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hub_patterns": ("Org/Model-*")}, "not the string 'Org/Model-\\*'"),  # the missing comma
        ({"hub_patterns": ("*",)}, "literal organisation"),
        ({"pipelines": "AcmePipeline"}, "not the string"),
        ({"pipelines": ()}, "at least one pipeline"),
        ({"claims": {"teacache": "supported"}}, "must be a Claim"),
        ({"extras": {"teacache": [1, 2]}}, "must be a mapping"),
        ({"load": "nocolon"}, "package.module:attribute"),
        ({"limits": Limits(size_multiple=16), "extra_traits": ("Not A Trait",)}, "trait"),
    ],
)
def test_family_spec_rejects_bad_fields(kwargs, match):
    base = dict(name="acme", summary="s", pipelines=("AcmePipeline",), facts=FamilyFacts(**FACTS))
    with pytest.raises(DeclarationError, match=match):
        FamilySpec(**{**base, **kwargs})


def test_family_facts_and_limits_validate():
    with pytest.raises(DeclarationError, match="not the string"):
        FamilyFacts(**{**FACTS, "block_attrs": "blocks"})
    with pytest.raises(DeclarationError, match="tasks"):
        FamilyFacts(**{**FACTS, "tasks": ("txt2img",)})
    with pytest.raises(DeclarationError, match="positive integer"):
        Limits(size_multiple=0)
    with pytest.raises(DeclarationError, match="smaller than frames_multiple"):
        Limits(frames_multiple=4, frames_offset=4)
    assert Limits(size_multiple=16).smallest == 16


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": "tinny"}, "size 'tinny' is not one of tiny, medium, large"),
        ({"weights": "pretrained"}, "weights"),
        ({"build": None}, "must be a callable"),
        ({"family": "Not A Name"}, "must match"),
    ],
)
def test_model_spec_rejects_bad_fields(kwargs, match):
    base = dict(name="tiny-acme", family="acme", summary="s", build="m:f")
    with pytest.raises(DeclarationError, match=match):
        ModelSpec(**{**base, **kwargs})


def test_behaviour_may_be_a_callable():
    def impl(ctx, step):
        return None

    assert OptimizationSpec(name="ok", stage="cache", summary="s", lossless=True, impl=impl).impl is impl
    with pytest.raises(DeclarationError, match="selects nothing"):
        PresetSpec(name="empty", description="nothing")
    assert PresetSpec(name="p", description="d", optimize=("vae_tiling",)).optimize == ("vae_tiling",)
