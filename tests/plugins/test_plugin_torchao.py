"""torchao: every CPU scheme really quantizes and stays within its measured drift, config keys map as
documented, hardware-bound schemes are honestly unavailable, failures leave the pipeline unchanged."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import omni
from omni.config import resolve_config
from omni.errors import ConfigError, UsageError
from omni.plugins import get_registry
from omni.testing import OptimizationConformance
from omni.verify import psnr

torch = pytest.importorskip("torch")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class TestTorchao(OptimizationConformance):
    optimization = "torchao"
    run_verification = False


class TestTorchaoLoad(OptimizationConformance):
    optimization = "torchao_load"
    run_verification = False


class TestTorchaoFp8Dynamic(OptimizationConformance):
    optimization = "torchao_fp8_dynamic"
    run_verification = False


class TestTorchaoInt4WeightOnly(OptimizationConformance):
    optimization = "torchao_int4_weight_only"
    run_verification = False


# scheme -> (PSNR floor vs the unquantized run, max transformer bytes after/before): floors a few dB
# under the tiny-flux figures in docs/benchmarks.md (Quantization, CPU fp32 column)
SCHEMES = {
    "int8_weight_only": (50.0, 0.31),
    "int8_dynamic": (50.0, 0.31),
    "fp8_weight_only": (37.0, 0.30),
    "nf4": (27.0, 0.17),
    "intx4_weight_only": (31.0, 0.32),
}
QUANT_TENSORS = {"Int8Tensor", "Float8Tensor", "NF4Tensor", "IntxUnpackedToInt8Tensor"}


@pytest.fixture(scope="module")
def baseline():
    return omni.run("tiny-flux", seed=0, device="cpu").images


def _weight_types(module):
    return {type(m.weight).__name__ for m in module.modules() if isinstance(m, torch.nn.Linear)}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_each_cpu_scheme_quantizes_the_denoiser_within_its_drift(scheme, baseline):
    floor, max_ratio = SCHEMES[scheme]
    result = omni.run("tiny-flux", optimize=["torchao"], sets={"torchao.scheme": scheme}, seed=0, device="cpu")
    res = result.report.result("torchao")
    assert res.status == "applied", res.reason
    assert res.details["scheme"] == scheme and res.details["formats"] == {"transformer": f"torchao:{scheme}"}
    assert res.details["reversible"] is False  # keeping the full-precision weights would keep their memory
    assert result.report.device_placement["transformer"]["quantization"] == f"torchao:{scheme}"
    assert _weight_types(result.pipe.transformer) & QUANT_TENSORS
    assert _weight_types(result.pipe.text_encoder_2) == {"Parameter"}  # text encoders are opt-in
    measured = result.report.memory["param_bytes"]["transformer"]
    assert res.details["bytes_before"]["transformer"] == measured["before"]
    assert res.details["bytes_after"]["transformer"] == measured["after"]
    assert measured["after"] <= max_ratio * measured["before"]
    p = psnr(result.images, baseline)
    assert floor <= p < float("inf"), p


@pytest.mark.parametrize("scheme", ["int8_weight_only", "nf4"])
def test_load_time_matches_post_load_quantization(scheme):
    post = omni.run("tiny-flux", optimize=["torchao"], sets={"torchao.scheme": scheme}, seed=0, device="cpu")
    load = omni.run("tiny-flux", optimize=["torchao_load"], sets={"torchao_load.scheme": scheme}, seed=0,
                    device="cpu")
    res = load.report.result("torchao_load")
    assert res.status == "applied" and res.details["formats"] == {"transformer": f"torchao:{scheme}"}
    assert res.details["reversible"] is False
    np.testing.assert_array_equal(load.images, post.images)
    after = load.report.memory["param_bytes"]["transformer"]["after"]
    assert after == post.report.memory["param_bytes"]["transformer"]["after"]
    assert after < res.details["bytes_unquantized"]["transformer"]
    assert _weight_types(load.pipe.transformer) & QUANT_TENSORS


def _omni(*args, env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "omni", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_seed_keys_apply_it_and_report_bytes(tmp_path):
    out = tmp_path / "q.png"
    proc = _omni("run", "tiny-flux", "--set", "quantization=int8", "--set", "quantization_backend=torchao",
                 "--output", str(out), "--steps", "2", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "torchao" in proc.stdout and "bytes_before" in proc.stdout and "bytes_after" in proc.stdout
    report = json.loads((tmp_path / "q.report.json").read_text())
    (res,) = [r for r in report["config_resolved"] if r["name"] == "torchao"]
    assert res["status"] == "applied" and res["requested_by"] == "--set quantization='int8'"
    assert res["options"]["scheme"] == "int8_weight_only"
    sizes = report["memory"]["param_bytes"]["transformer"]
    assert sizes["after"] < 0.35 * sizes["before"]
    assert report["device_placement"]["transformer"]["quantization"] == "torchao:int8_weight_only"


def test_capabilities_show_hardware_schemes_unavailable_with_reason():
    proc = _omni("capabilities", "tiny-flux", "--json", env={"OMNI_CUDA_CAPABILITY": "none"})
    assert proc.returncode == 0, proc.stderr
    cells = {c["optimization"]: c for c in json.loads(proc.stdout)["optimizations"]}
    for name in ("torchao_fp8_dynamic", "torchao_int4_weight_only"):
        assert cells[name]["status"] == "unavailable"
        assert any("CUDA" in r for r in cells[name]["reasons"]), cells[name]
    assert cells["torchao"]["status"] == "supported"
    proc = _omni("capabilities", "tiny-flux", "--json", env={"OMNI_CUDA_CAPABILITY": "8.0"})
    cells = {c["optimization"]: c for c in json.loads(proc.stdout)["optimizations"]}
    assert cells["torchao_fp8_dynamic"]["status"] == "unavailable"
    assert any(">= 8.9" in r and "8.0" in r for r in cells["torchao_fp8_dynamic"]["reasons"])
    assert cells["torchao_int4_weight_only"]["status"] in ("untested", "supported")


@pytest.mark.parametrize("config, name, scheme", [
    ({"quantization": "int8", "quantization_backend": "torchao"}, "torchao", "int8_weight_only"),
    ({"quantization": "fp8", "quantization_backend": "torchao"}, "torchao", "fp8_weight_only"),
    ({"quantization": "nf4", "quantization_backend": "torchao"}, "torchao", "nf4"),
    ({"quantization": "int8"}, "torchao", "int8_dynamic"),  # vLLM-Omni: int8 is W8A8
    ({"quantization": "nf4"}, "torchao", "nf4"),
    ({"quantization": "fp8"}, "torchao_fp8_dynamic", None),  # vLLM-Omni: fp8 is W8A8 on SM >= 8.9
])
def test_config_keys_map_to_the_documented_scheme(config, name, scheme):
    cfg = resolve_config(get_registry(), config)
    assert list(cfg.requested) == [name]
    if scheme:
        assert cfg.requested[name]["scheme"] == scheme


def test_config_keys_refuse_what_they_do_not_cover():
    with pytest.raises(ConfigError, match="int4"):
        resolve_config(get_registry(), {"quantization": "int4", "quantization_backend": "torchao"})
    with pytest.raises(ConfigError, match="does not apply"):
        resolve_config(get_registry(), {"quantization": "fp8", "quantization_backend": "bitsandbytes"})
    cfg = resolve_config(get_registry(), {"quantization": "int8", "ignored_layers": "to_add_out"})
    assert cfg.requested["torchao"]["ignored_layers"] == "to_add_out"


def test_fp8_from_vllm_key_is_skipped_as_unavailable_on_a_cpu_host(monkeypatch):
    monkeypatch.setenv("OMNI_CUDA_CAPABILITY", "none")
    from omni.runtime.api import prepare

    prep = prepare("tiny-flux", {"quantization": "fp8"})
    (skipped,) = prep.plan.skipped
    assert skipped.name == "torchao_fp8_dynamic" and skipped.status == "unavailable"
    assert "CUDA" in "; ".join(skipped.reasons)


@pytest.mark.parametrize("other", ["torchao_load", "torchao_fp8_dynamic", "gguf", "layerwise_casting"])
def test_conflicts_are_declared(other):
    from omni.matrix import conflict_reason

    reg = get_registry()
    if other not in reg.optimizations:
        pytest.skip(f"{other} is not installed")
    assert conflict_reason(reg.optimization("torchao").spec, reg.optimization(other).spec)


def test_ignored_layers_are_kept_and_unmatched_names_reported():
    result = omni.run("tiny-flux", optimize=["torchao"], sets={"torchao.ignored_layers": "attn.to_q,no_such_layer"},
                      device="cpu")
    res = result.report.result("torchao")
    assert res.details["layers"]["transformer"] == "26 quantized, 2 kept"
    tr = result.pipe.transformer
    assert type(tr.transformer_blocks[0].attn.to_q.weight).__name__ == "Parameter"
    assert type(tr.single_transformer_blocks[0].attn.to_q.weight).__name__ == "Parameter"
    assert type(tr.transformer_blocks[0].attn.to_k.weight).__name__ == "Int8Tensor"
    assert res.details["ignored_unmatched"] == ["no_such_layer"]
    assert any("no_such_layer" in n for n in result.report.notes)


def test_text_encoders_are_opt_in():
    result = omni.run("tiny-flux", optimize=["torchao"], sets={"torchao.components": "denoiser,text_encoders"},
                      device="cpu")
    res = result.report.result("torchao")
    assert set(res.details["formats"]) == {"transformer", "text_encoder", "text_encoder_2"}
    sizes = result.report.memory["param_bytes"]
    for comp in ("transformer", "text_encoder", "text_encoder_2"):
        assert sizes[comp]["after"] < sizes[comp]["before"], comp
    assert sizes["vae"]["after"] == sizes["vae"]["before"]
    assert np.isfinite(result.images).all()


def test_unknown_component_is_a_usage_error():
    with pytest.raises(UsageError, match="torchao.components.*unet"):
        omni.run("tiny-flux", optimize=["torchao"], sets={"torchao.components": "unet"}, device="cpu")


def test_a_failure_midway_leaves_the_pipeline_unchanged(monkeypatch, baseline):
    import torchao.quantization as q

    real, calls = q.quantize_, []

    def flaky(module, config, *a, **k):
        calls.append(1)
        if len(calls) == 10:
            raise RuntimeError("simulated kernel failure")
        return real(module, config, *a, **k)

    monkeypatch.setattr(q, "quantize_", flaky)
    result = omni.run("tiny-flux", optimize=["torchao"], seed=0, device="cpu")
    res = result.report.result("torchao")
    assert res.status == "failed" and "pipeline unchanged" in res.reason and "simulated" in res.reason
    assert _weight_types(result.pipe.transformer) == {"Parameter"}
    np.testing.assert_array_equal(result.images, baseline)


# ----------------------------------------------------------------------------- GPU only
def _gpu_run(optimization, **sets):
    base = omni.run("tiny-flux", seed=0, device="cuda", dtype="bfloat16")
    result = omni.run("tiny-flux", optimize=[optimization], sets={f"{optimization}.{k}": v for k, v in sets.items()},
                      seed=0, device="cuda", dtype="bfloat16")
    return base, result


@pytest.mark.gpu
@gpu
@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability() < (8, 9),
                    reason="float8 W8A8 needs compute capability >= 8.9")
def test_fp8_dynamic_on_a_capable_gpu():
    base, result = _gpu_run("torchao_fp8_dynamic")
    res = result.report.result("torchao_fp8_dynamic")
    assert res.status == "applied", res.reason
    assert "Float8Tensor" in _weight_types(result.pipe.transformer)
    assert res.details["formats"] == {"transformer": "torchao:fp8_dynamic"}
    assert psnr(result.images, base.images) >= 30.0


@pytest.mark.gpu
@gpu
def test_int4_weight_only_on_a_gpu():
    base, result = _gpu_run("torchao_int4_weight_only", group_size="32")
    res = result.report.result("torchao_int4_weight_only")
    assert res.status == "applied", res.reason
    assert "Int4TilePackedTo4dTensor" in _weight_types(result.pipe.transformer)
    assert psnr(result.images, base.images) >= 25.0


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("scheme", ["int8_weight_only", "int8_dynamic"])
def test_cpu_schemes_also_run_on_a_gpu(scheme):
    base, result = _gpu_run("torchao", scheme=scheme)
    assert result.report.result("torchao").status == "applied"
    assert result.report.device_placement["transformer"]["device"].startswith("cuda")
    assert psnr(result.images, base.images) >= 40.0
