"""parallel_loading: diffusers' threaded shard loading for sharded components, exact output, the
module constants put back, and an honest skip for single-file models."""

import shutil

import numpy as np
import pytest

import omni
from omni.testing import OptimizationConformance

PROMPT = "a red circle on a blue background"


class TestParallelLoading(OptimizationConformance):
    optimization = "parallel_loading"
    run_verification = False  # no supported claim: the tiny models are single files (see plugin.py)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """tiny-flux with its transformer saved in several shards."""
    from diffusers import FluxTransformer2DModel

    from omni.sdk import model_folder, resolve

    source = model_folder(resolve("tiny-flux"))
    folder = tmp_path_factory.mktemp("sharded") / "tiny-flux-sharded"
    shutil.copytree(source, folder)
    shutil.rmtree(folder / "transformer")
    FluxTransformer2DModel.from_pretrained(f"{source}/transformer").save_pretrained(
        folder / "transformer", max_shard_size="60KB")
    return folder


@pytest.fixture
def threadpool(monkeypatch):
    """Records each call of diffusers' threaded shard loader: (shard files, worker constant at the call)."""
    from diffusers.models import model_loading_utils, modeling_utils

    calls = []
    real = modeling_utils._load_shard_files_with_threadpool

    def spy(shard_files, *args, **kwargs):
        calls.append((len(shard_files), model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS))
        return real(shard_files, *args, **kwargs)

    monkeypatch.setattr(modeling_utils, "_load_shard_files_with_threadpool", spy)
    return calls


def test_sharded_component_loads_in_parallel_with_the_same_output(sharded, threadpool):
    from diffusers.models import model_loading_utils, modeling_utils

    from omni_plugin_parallel_loading.impl import shard_count

    constants = modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS
    shards = shard_count(str(sharded / "transformer"))
    assert shards >= 3
    base = omni.run(str(sharded), PROMPT, seed=0, height=32, width=32, num_inference_steps=2)
    assert threadpool == []  # without the step diffusers reads them one by one
    result = omni.run(str(sharded), PROMPT, seed=0, height=32, width=32, num_inference_steps=2,
                      optimize=["parallel_loading"], sets={"parallel_loading.num_workers": 2})
    res = result.report.result("parallel_loading")
    assert res.status == "applied", res.reason
    assert res.details["components"]["transformer"] == {"class": "FluxTransformer2DModel", "shards": shards,
                                                        "workers": 2}
    assert "vae" in res.details["single_file"]
    assert threadpool == [(shards, 2)]
    np.testing.assert_array_equal(result.images, base.images)
    assert (modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS) \
        == constants


def test_workers_never_exceed_shards(sharded, threadpool):
    result = omni.run(str(sharded), PROMPT, seed=0, height=32, width=32, num_inference_steps=1,
                      config={"enable_parallel_loading": True, "parallel_loading_workers": 64})
    info = result.report.result("parallel_loading").details["components"]["transformer"]
    assert info["workers"] == info["shards"] and threadpool == [(info["shards"], info["shards"])]


def test_single_file_model_is_skipped_with_the_reason(threadpool):
    result = omni.run("tiny-flux", PROMPT, optimize=["parallel_loading"])
    res = result.report.result("parallel_loading")
    assert res.status == "skipped"
    assert "no diffusers component of this model is sharded" in res.reason and "transformer" in res.reason
    assert threadpool == []


def test_constants_are_restored_when_loading_fails():
    from diffusers.models import model_loading_utils, modeling_utils

    from omni_plugin_parallel_loading.impl import parallel

    constants = modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS
    with pytest.raises(RuntimeError, match="shard 2 is damaged"):
        with parallel(3):
            assert (modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS) \
                == (True, 3)
            raise RuntimeError("shard 2 is damaged")
    assert (modeling_utils.HF_ENABLE_PARALLEL_LOADING, model_loading_utils.DEFAULT_HF_PARALLEL_LOADING_WORKERS) \
        == constants
