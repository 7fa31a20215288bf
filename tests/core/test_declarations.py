"""Declarations validate themselves and are plain data (no torch import)."""

import subprocess
import sys

import pytest

from omni.errors import DeclarationError
from omni.specs import Claim, ConfigKey, FamilyFacts, Needs, OptimizationSpec, Option, Stage, Support, TeaCacheFacts


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
    with pytest.raises(DeclarationError, match="exactly 5"):
        TeaCacheFacts(probe="p", coefficients=(1.0, 2.0))
    with pytest.raises(DeclarationError, match="needs a reason"):
        Claim(Support.UNSUPPORTED)
    with pytest.raises(DeclarationError, match="denoiser 'rnn'"):
        FamilyFacts(denoiser="rnn", denoiser_components=("x",), modality="image", tasks=(), guidance="cfg",
                    vae_class="V", model_cpu_offload_seq="")


def test_declarations_are_frozen():
    spec = OptimizationSpec(name="ok", stage="cache", summary="s", lossless=True, impl="m:f")
    assert spec.stage is Stage.CACHE
    with pytest.raises(Exception):
        spec.name = "other"  # type: ignore[misc]


def test_building_declarations_imports_no_torch():
    code = "import sys, omni.specs, omni.plugins, omni.matrix, omni.resolve; " \
           "assert not {'torch','diffusers','transformers'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True)
