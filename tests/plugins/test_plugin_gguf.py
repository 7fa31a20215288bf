"""GGUF: `omni convert` writes the denoiser per qtype, `--optimize gguf` loads it back within the
measured drift, and every bad file stops the run with exit 2 and one line naming the file.

`omni verify` proves Q8_0 per family (the declaration's verify_prepare converts the model first);
these round trips cover the other qtypes."""

import os
import subprocess
import sys

import numpy as np
import pytest

import omni
from omni.config import resolve_config
from omni.errors import UsageError
from omni.plugins import get_registry
from omni.testing import OptimizationConformance
from omni.verify import psnr
from omni_plugin_gguf.convert import convert_command

gguf = pytest.importorskip("gguf")


class TestGGUF(OptimizationConformance):
    optimization = "gguf"
    run_verification = False


# qtype -> (PSNR floor vs the safetensors run, max file bytes / fp32 bytes): under the tiny-flux figures in
# docs/benchmarks.md (Quantization)
QTYPES = {"Q8_0": (52.0, 0.32), "Q5_1": (40.0, 0.24), "Q4_0": (32.0, 0.20), "BF16": (58.0, 0.54)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf")
    out = {}
    for qtype in QTYPES:
        path = str(folder / f"tiny-flux-{qtype}.gguf")
        out[qtype] = (path, convert_command("tiny-flux", to="gguf", qtype=qtype, output=path, component=None,
                                            force=False, json_out=True))
    return out


@pytest.fixture(scope="module")
def baseline():
    return omni.run("tiny-flux", seed=0, device="cpu").images


@pytest.mark.parametrize("qtype", list(QTYPES))
def test_convert_and_round_trip(qtype, converted, baseline):
    floor, max_ratio = QTYPES[qtype]
    path, info = converted[qtype]
    assert info["file_bytes"] == os.path.getsize(path)
    assert info["ratio_vs_fp32"] <= max_ratio
    assert info["ratio_vs_fp32"] == round(info["file_bytes"] / info["fp32_bytes"], 4)
    reader = gguf.GGUFReader(path)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["transformer_blocks.0.attn.to_q.weight"] == qtype
    assert types["transformer_blocks.0.attn.to_q.bias"] == "F32"
    assert sum(1 for t in types.values() if t == qtype) == info["quantized"]

    result = omni.run("tiny-flux", optimize=["gguf"], sets={"gguf.path": path}, seed=0, device="cpu")
    res = result.report.result("gguf")
    assert res.status == "applied", res.reason
    assert res.details["formats"] == {"transformer": f"gguf:{qtype}"} and res.details["layout"] == "diffusers keys"
    assert res.details["reversible"] is False  # the weights were loaded from the file
    assert result.report.device_placement["transformer"]["quantization"] == f"gguf:{qtype}"
    params = [p for p in result.pipe.transformer.parameters() if type(p).__name__ == "GGUFParameter"]
    assert len(params) == info["quantized"]
    p = psnr(result.images, baseline)
    assert floor <= p < float("inf"), p


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl", "tiny-sd3"])
def test_q8_round_trip_on_other_families(model, tmp_path):
    # figures per family: docs/benchmarks.md (Quantization); a UNet file keeps its convolutions F32
    if model.replace("-", "_") not in get_registry().models:
        pytest.skip(f"{model} is not installed")
    path = str(tmp_path / f"{model}.gguf")
    info = convert_command(model, to="gguf", qtype="Q8_0", output=path, component=None, force=False, json_out=True)
    base = omni.run(model, seed=0, device="cpu")
    result = omni.run(model, optimize=["gguf"], sets={"gguf.path": path}, seed=0, device="cpu")
    res = result.report.result("gguf")
    assert res.status == "applied", res.reason
    assert res.details["qtypes"]["Q8_0"] == info["quantized"] > 0
    assert psnr(result.images, base.images) >= 50.0


def test_smaller_types_give_smaller_files(converted):
    sizes = [converted[q][1]["file_bytes"] for q in ("Q4_0", "Q5_1", "Q8_0", "BF16")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


def _omni(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "omni", *args], capture_output=True, text=True, env=env, timeout=300)


def _error_line(proc):
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return errors[0]


def test_cli_convert_prints_sizes(tmp_path):
    out = tmp_path / "t.gguf"
    proc = _omni("convert", "tiny-flux", "--to", "gguf", "--qtype", "Q4_0", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout and "vs fp32" in proc.stdout and "vs bf16" in proc.stdout
    assert out.stat().st_size > 0
    proc = _omni("convert", "tiny-flux", "--to", "gguf", "--qtype", "Q4_0", "--output", str(out))
    assert proc.returncode == 2 and "--force" in _error_line(proc)


def test_cli_convert_refuses_k_quants_and_other_formats(tmp_path):
    proc = _omni("convert", "tiny-flux", "--to", "gguf", "--qtype", "Q4_K", "--output", str(tmp_path / "k.gguf"))
    assert proc.returncode == 2 and "gguf-py" in _error_line(proc)
    assert not (tmp_path / "k.gguf").exists()
    with pytest.raises(UsageError, match="gguf only"):
        convert_command("tiny-flux", to="safetensors", qtype="Q8_0", output=str(tmp_path / "x"), component=None,
                        force=False, json_out=False)
    with pytest.raises(UsageError, match="not one of"):
        convert_command("tiny-flux", to="gguf", qtype="Q3_0", output=str(tmp_path / "x"), component=None,
                        force=False, json_out=False)
    with pytest.raises(UsageError, match="family"):
        convert_command("flux", to="gguf", qtype="Q8_0", output=str(tmp_path / "x"), component=None,
                        force=False, json_out=False)
    with pytest.raises(UsageError, match="no component 'unet'"):
        convert_command("tiny-flux", to="gguf", qtype="Q8_0", output=str(tmp_path / "x"), component="unet",
                        force=False, json_out=False)


def _rewrite(src, dst, *, rename=None, reshape=None):
    """Copy a GGUF file as F32 tensors, renaming or reshaping some (to fake a file of another model)."""
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, arch="flux")
    for t in reader.tensors:
        shape = tuple(reversed(t.shape.tolist()))
        array = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        if reshape and t.name in reshape:
            array = np.zeros(reshape[t.name], np.float32)
        writer.add_tensor(rename(t.name) if rename else t.name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def bad_files(converted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    good = converted["Q8_0"][0]
    data = open(good, "rb").read()
    files = {
        "truncated": (folder / "truncated.gguf", "truncated"),
        "corrupt": (folder / "corrupt.gguf", "truncated or corrupt"),
        "shapes": (folder / "shapes.gguf", "proj_out.weight is [8, 32] in the file but [16, 32]"),
        "names": (folder / "names.gguf", "tensors are missing"),
        "empty": (folder / "empty.gguf", "is empty"),
        "missing": (folder / "missing.gguf", "does not exist"),
    }
    files["truncated"][0].write_bytes(data[: len(data) - 1000])
    files["corrupt"][0].write_bytes(b"GGUX" + data[4:])
    _rewrite(good, str(files["shapes"][0]), reshape={"proj_out.weight": (8, 32)})
    _rewrite(good, str(files["names"][0]), rename=lambda n: n.replace("transformer_blocks", "double_blocks"))
    files["empty"][0].write_bytes(b"")
    return files


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "shapes"])
def test_bad_file_stops_the_run_with_exit_2_and_one_line(kind, bad_files, tmp_path):
    path, expected = bad_files[kind]
    proc = _omni("run", "tiny-flux", "--optimize", "gguf", "--set", f"gguf.path={path}",
                 "--output", str(tmp_path / "x.png"), "--device", "cpu")
    assert proc.returncode == 2, proc.stderr
    line = _error_line(proc)
    assert str(path) in line and expected in line, line
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["names", "empty", "missing"])
def test_bad_file_is_a_usage_error_before_loading(kind, bad_files, monkeypatch):
    import omni.loading

    path, expected = bad_files[kind]
    monkeypatch.setattr(omni.loading, "load_diffusers", lambda *a: pytest.fail("the pipeline was loaded"))
    with pytest.raises(UsageError, match=expected) as exc:
        omni.run("tiny-flux", optimize=["gguf"], sets={"gguf.path": str(path)}, device="cpu")
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_file_of_another_component_is_refused(converted, tmp_path):
    path = str(tmp_path / "vae.gguf")
    convert_command("tiny-flux", to="gguf", qtype="Q8_0", output=path, component="vae", force=False, json_out=True)
    with pytest.raises(UsageError, match="written for AutoencoderKL"):
        omni.run("tiny-flux", optimize=["gguf"], sets={"gguf.path": path}, device="cpu")


def test_missing_path_is_a_usage_error():
    with pytest.raises(UsageError, match="gguf needs a file"):
        omni.run("tiny-flux", optimize=["gguf"], device="cpu")


def test_vllm_omni_keys_select_it(converted):
    path = converted["Q8_0"][0]
    cfg = resolve_config(get_registry(), {"quantization": "gguf", "gguf_model": path})
    assert cfg.requested == {"gguf": {"path": path}}
    cfg = resolve_config(get_registry(), {"optimize": ["gguf"], "gguf_path": path, "gguf.compute_dtype": "bf16"})
    assert cfg.requested == {"gguf": {"path": path, "compute_dtype": "bfloat16"}}


def test_compute_dtype_follows_the_run_dtype(converted):
    path = converted["Q8_0"][0]
    with pytest.raises(UsageError, match="compute_dtype=bfloat16 differs from this run's dtype float32"):
        omni.run("tiny-flux", optimize=["gguf"], sets={"gguf.path": path, "gguf.compute_dtype": "bf16"},
                 device="cpu")
    base = omni.run("tiny-flux", seed=0, dtype="bfloat16", device="cpu")
    result = omni.run("tiny-flux", optimize=["gguf"], sets={"gguf.path": path, "gguf.compute_dtype": "bf16"},
                      seed=0, dtype="bfloat16", device="cpu")
    assert result.report.result("gguf").details["compute_dtype"] == "bfloat16"
    linear = result.pipe.transformer.transformer_blocks[0].attn.to_q
    assert type(linear).__name__ == "GGUFLinear" and str(linear.compute_dtype) == "torch.bfloat16"
    assert psnr(result.images, base.images) > 40


@pytest.mark.parametrize("other", ["torchao", "torchao_load"])
def test_conflicts_with_torchao(other, converted):
    from omni.runtime.api import prepare

    if other not in get_registry().optimizations:
        pytest.skip(f"{other} is not installed")
    prep = prepare("tiny-flux", optimize=["gguf", other], sets={"gguf.path": converted["Q8_0"][0]})
    assert prep.plan.names() == ["gguf"]
    (skipped,) = prep.plan.skipped
    assert skipped.name == other and skipped.status == "conflict"


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_round_trip_on_a_gpu(converted):
    base = omni.run("tiny-flux", seed=0, device="cuda", dtype="bfloat16")
    result = omni.run("tiny-flux", optimize=["gguf"], sets={"gguf.path": converted["Q8_0"][0]}, seed=0,
                      device="cuda", dtype="bfloat16")
    assert result.report.result("gguf").status == "applied"
    assert result.report.device_placement["transformer"]["device"].startswith("cuda")
    assert psnr(result.images, base.images) >= 40.0
