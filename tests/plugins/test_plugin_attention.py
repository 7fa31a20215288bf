"""Attention backends: every kernel this CPU runs gives the SDPA output within rounding, the ones it
cannot run skip with torch's reason before changing anything, GPU kernels are unavailable with their
needs, the process-wide default stays, undo restores. GPU kernels are checked in the gpu-marked test."""

import numpy as np
import pytest

import omni
from omni.testing import OptimizationConformance

PROMPT = "a red circle on a blue background"
CPU_BACKENDS = ("native", "_native_math", "_native_flash", "flex")


class TestAttentionBackend(OptimizationConformance):
    optimization = "attention_backend"
    run_verification = False  # tests/verified runs every supported cell


@pytest.fixture(scope="module")
def base():
    return omni.run("tiny-flux", PROMPT, seed=0).images


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cpu_backends_match_sdpa(base, backend):
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    default = _AttentionBackendRegistry._active_backend
    result = omni.run("tiny-flux", PROMPT, seed=0, optimize=["attention_backend"],
                      sets={"attention_backend.backend": backend})
    res = result.report.result("attention_backend")
    assert res.status == "applied", res.reason
    assert res.details["backend"] == backend and res.details["processors"] == {"transformer": 2}
    procs = [m.processor for m in result.pipe.transformer.modules() if hasattr(m, "processor")]
    assert {p._attention_backend.value for p in procs} == {backend}
    assert _AttentionBackendRegistry._active_backend == default  # the process default is not changed
    assert np.abs(result.images - base).max() <= 1e-4


def test_config_key_routes_by_value():
    from omni.config import resolve_config
    from omni.plugins import get_registry

    reg = get_registry()
    assert resolve_config(reg, {"attention_backend": "flex"}).requested == {"attention_backend": {"backend": "flex"}}
    assert resolve_config(reg, {"attention_backend": "sage"}).requested == {"attention_sage": {"backend": "sage"}}
    assert resolve_config(reg, {"attention_backend": "_native_cudnn"}).requested == \
        {"attention_cudnn": {"backend": "_native_cudnn"}}


def test_a_kernel_this_host_cannot_run_skips_before_changing_anything():
    result = omni.run("tiny-flux", PROMPT, optimize=["attention_backend"],
                      sets={"attention_backend.backend": "_native_efficient"}, device="cpu")
    res = result.report.result("attention_backend")
    assert res.status == "skipped"
    assert "attention backend _native_efficient cannot run on cpu float32" in res.reason
    assert all(getattr(m.processor, "_attention_backend", None) is None
               for m in result.pipe.transformer.modules() if hasattr(m, "processor"))


def test_unet_processors_are_unsupported_with_the_reason():
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry

    cell = CompatMatrix(get_registry(), env=Environment.detect()).cell("sd15", "attention_backend")
    assert cell.status.value == "unsupported" and "AttnProcessor2_0 calls torch's" in cell.reasons[0]


def test_gpu_kernels_are_unavailable_here_with_their_needs(monkeypatch):
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry

    monkeypatch.setenv("OMNI_CUDA_CAPABILITY", "none")
    matrix = CompatMatrix(get_registry(), env=Environment.detect())
    for name in ("attention_cudnn", "attention_flash", "attention_flash3", "attention_sage", "attention_xformers"):
        cell = matrix.cell("flux", name)
        assert cell.status.value == "unavailable", (name, cell)
        assert any("CUDA accelerator" in r for r in cell.reasons), cell.reasons
    assert any("package sageattention is not installed" in r for r in matrix.cell("flux", "attention_sage").reasons)


def test_undo_restores_the_processors():
    from omni.testing.undo import check_undo

    base, out, pipe = check_undo("tiny-flux", ["attention_backend"], sets={"attention_backend.backend": "flex"})
    assert np.abs(out - base).max() <= 1e-4
    assert all(m.processor._attention_backend is None for m in pipe.transformer.modules() if hasattr(m, "processor"))


@pytest.mark.gpu
@pytest.mark.parametrize("name,backend", [("attention_backend", "_native_efficient"), ("attention_cudnn", "_native_cudnn"),
                                          ("attention_flash", "flash"), ("attention_sage", "sage")])
def test_gpu_kernels(name, backend):
    """On a GPU host: each kernel that is installed applies in bf16 and stays within its PSNR floor."""
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry
    from omni.verify import psnr

    cell = CompatMatrix(get_registry(), env=Environment.detect()).cell("flux", name)
    if cell.status.value == "unavailable":
        pytest.skip("; ".join(cell.reasons))
    base = omni.run("tiny-flux", PROMPT, seed=0, device="cuda", dtype="bfloat16").images
    result = omni.run("tiny-flux", PROMPT, seed=0, device="cuda", dtype="bfloat16", optimize=[name],
                      sets={f"{name}.backend": backend})
    assert result.report.result(name).status == "applied", result.report.result(name).reason
    spec = get_registry().optimization(name).spec
    assert psnr(result.images, base) >= spec.tolerance_psnr
