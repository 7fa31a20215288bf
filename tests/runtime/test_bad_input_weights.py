"""Bad weights (issue 14, "Weights"): pickle refused unless the user opts in (and then named in the
report), a damaged safetensors file is bad input (exit 2) like a damaged GGUF file, a load dtype is
validated before loading, and NaN weights end in a failed run that writes only its report."""

import importlib.util
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

import omni
from omni.errors import UsageError

_spec = importlib.util.spec_from_file_location("omni_fuzz_cli", Path(__file__).with_name("test_fuzz_cli.py"))
fuzz_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_cli)


@pytest.fixture(scope="module")
def tiny_flux() -> str:
    from omni.sdk import model_folder, resolve

    return model_folder(resolve("tiny-flux"))


def _copy(src: str, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=False)
    return dst


def _as_pickle(folder: Path, component: str) -> str:
    """Replace a component's safetensors by a torch pickle of the same tensors; -> its relative path."""
    import torch
    from safetensors.torch import load_file

    st = folder / component / "diffusion_pytorch_model.safetensors"
    name = f"{component}/diffusion_pytorch_model.bin"
    torch.save(load_file(st), folder / name)
    st.unlink()
    return name


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/omni-h6-pwned",))


def test_pickle_weights_are_refused_unless_opted_in(tiny_flux, tmp_path):
    folder = _copy(tiny_flux, tmp_path / "model")
    name = _as_pickle(folder, "transformer")
    outcome, stderr = fuzz_cli.run_in_process(["run", str(folder)], str(tmp_path))
    assert outcome == "refused" and f"{folder}/{name} holds pickle weights" in stderr and "--allow-pickle" in stderr
    with pytest.raises(UsageError, match="holds pickle weights"):
        omni.run(str(folder), num_inference_steps=1)
    long_prompt = "a red circle on a blue background " * 600
    result = omni.run(str(folder), long_prompt, config={"allow_pickle": True}, num_inference_steps=1)
    notes = result.report.notes
    assert any("loaded pickle weights" in n and name in n for n in notes), notes
    # the prompt the model saw is described: both tokenizers cut it, and the report says so
    assert any(n.startswith("prompt truncated by the pipeline") and "tokenizer_2" in n for n in notes), notes
    assert result.report.config_requested["allow_pickle"] is True


def test_convert_refuses_pickle_and_never_unpickles_code(tiny_flux, tmp_path):
    from omni_plugin_gguf.convert import convert_command

    folder = _copy(tiny_flux, tmp_path / "model")
    name = _as_pickle(folder, "transformer")
    kw = dict(to="gguf", qtype="Q8_0", component=None, force=False, json_out=True)
    with pytest.raises(UsageError, match="--allow-pickle"):
        convert_command(str(folder), output=str(tmp_path / "a.gguf"), **kw)
    result = convert_command(str(folder), output=str(tmp_path / "a.gguf"), allow_pickle=True, **kw)
    assert result["pickle_files"] == [name]
    with open(folder / name, "wb") as fh:
        pickle.dump(_Payload(), fh)
    with pytest.raises(UsageError, match="is not a plain tensor file"):
        convert_command(str(folder), output=str(tmp_path / "b.gguf"), allow_pickle=True, **kw)
    assert not os.path.exists("/tmp/omni-h6-pwned") and not (tmp_path / "b.gguf").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_safetensors_is_bad_input(tiny_flux, tmp_path, damage):
    folder = _copy(tiny_flux, tmp_path / "model")
    st = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) // 2] if damage == "truncate" else os.urandom(4096))
    outcome, stderr = fuzz_cli.run_in_process(["run", str(folder)], str(tmp_path))
    assert outcome == "refused", (outcome, stderr)
    assert "transformer/diffusion_pytorch_model.safetensors is not a valid safetensors file" in stderr
    with pytest.raises(UsageError, match="not a valid safetensors file"):  # the Python API: the same rule
        omni.Engine(str(folder))


@pytest.mark.parametrize("kwargs, message", [
    (dict(dtype="float8_e4m3fn"), "dtype: float8_e4m3fn is a storage format"),
    (dict(dtype="int8"), "'int8' is not a dtype"),
])
def test_load_dtype_is_checked_before_loading(kwargs, message):
    with pytest.raises(UsageError, match=message):
        omni.Engine("tiny-flux", **kwargs)


def test_nan_weights_fail_with_exit_1_and_write_only_the_report(tiny_flux, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from typer.testing import CliRunner

    from omni.cli.app import app

    folder = _copy(tiny_flux, tmp_path / "model")
    st = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in load_file(st).items()},
              st)
    out, report = tmp_path / "x.png", tmp_path / "x.report.json"
    result = CliRunner().invoke(app, ["run", str(folder), "--steps", "1", "-o", str(out)])
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "NaN or infinite" in errors[0], result.stderr
    assert not out.exists()
    data = json.loads(report.read_text())
    assert "NaN or infinite" in data["error"] and data["artifacts"] == []
