import json
import os
import subprocess
import sys

import numpy as np
import pytest

import omni
from omni.testing import OptimizationConformance

ACCEL = ("model_cpu_offload", "sequential_cpu_offload", "group_offload", "layerwise_offload")


class TestModelCpuOffload(OptimizationConformance):
    optimization = "model_cpu_offload"
    run_verification = False


class TestSequentialCpuOffload(OptimizationConformance):
    optimization = "sequential_cpu_offload"
    run_verification = False


class TestGroupOffload(OptimizationConformance):
    optimization = "group_offload"
    run_verification = False


class TestLayerwiseOffload(OptimizationConformance):
    optimization = "layerwise_offload"
    run_verification = False


class TestDiskOffload(OptimizationConformance):
    optimization = "disk_offload"
    run_verification = False


def test_accelerator_offloads_are_unavailable_on_a_cpu_host_with_the_reason():
    env = {**os.environ, "OMNI_CUDA_CAPABILITY": "none"}
    out = subprocess.run([sys.executable, "-m", "omni", "capabilities", "tiny-flux", "--json"], capture_output=True,
                         text=True, env=env, check=True).stdout
    rows = {r["optimization"]: r for r in json.loads(out)["optimizations"]}
    for name in ACCEL:
        assert rows[name]["status"] == "unavailable"
        assert "needs a CUDA accelerator; none found on this host" in rows[name]["reasons"]
    assert rows["disk_offload"]["status"] == "supported"


def test_vram_first_preset_on_cpu_reports_what_was_applied_and_skipped():
    result = omni.run("tiny-flux", preset="vram-first", device="cpu")
    by = {r.name: r for r in result.report.config_resolved}
    assert by["model_cpu_offload"].status == "skipped"
    assert by["vae_slicing"].status == "applied" and by["vae_tiling"].status == "applied"


def test_offloads_are_mutually_exclusive():
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry

    conflicts = {(a, b) for a, b, _ in CompatMatrix(get_registry()).conflicts()}
    assert ("model_cpu_offload", "layerwise_offload") in conflicts or ("layerwise_offload", "model_cpu_offload") in conflicts


RSS = """
import gc, sys, torch, omni
from omni.runtime.measure import rss_bytes
torch.set_num_threads(1)
r = omni.run("medium-flux", optimize=sys.argv[1:], num_inference_steps=2, height=128, width=128)
gc.collect()
print(rss_bytes(), r.report.memory["param_bytes"]["transformer"]["before"])
"""


def test_disk_offload_lowers_resident_ram_and_is_exact():
    def rss(*opt):
        out = subprocess.run([sys.executable, "-c", RSS, *opt], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.split()
        return int(out[-2]), int(out[-1])

    plain, weights = rss()
    offloaded, _ = rss("disk_offload")
    assert plain - offloaded > 0.5 * weights, (plain, offloaded, weights)
    base = omni.run("tiny-flux").images
    np.testing.assert_array_equal(base, omni.run("tiny-flux", optimize=["disk_offload"]).images)


GPU_RUN = """
import sys, numpy as np, torch, omni
opt = sys.argv[2:]
torch.cuda.reset_peak_memory_stats()
r = omni.run("medium-flux", optimize=opt, device="cuda", dtype="float32", num_inference_steps=4)
torch.cuda.synchronize()
np.save(sys.argv[1], r.images)
print(r.report.result(opt[0]).status if opt else "baseline", torch.cuda.max_memory_allocated(),
      torch.cuda.memory_allocated())
"""


def _gpu_run(tmp_path, *optimize):
    out = tmp_path / f"{'-'.join(optimize) or 'base'}.npy"
    proc = subprocess.run([sys.executable, "-c", GPU_RUN, str(out), *optimize], capture_output=True, text=True,
                          check=True)
    status, peak, resident = proc.stdout.split()[-3:]
    return status, int(peak), int(resident), np.load(out)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ACCEL)
def test_gpu_offload_saves_vram_and_keeps_the_output(name, tmp_path):
    """Each run in a fresh process: peaks must not include another pipeline."""
    from omni.verify import psnr

    _, base_peak, base_resident, base = _gpu_run(tmp_path)
    status, peak, resident, images = _gpu_run(tmp_path, name)
    assert status == "applied"
    if name == "model_cpu_offload":
        # components move back to the CPU after use; the peak is the largest component (the transformer)
        assert resident < 0.2 * base_resident, (resident, base_resident)
    else:
        assert peak < 0.8 * base_peak, (name, peak, base_peak)
    assert psnr(images, base) > 40
