"""cfg_parallel and context_parallel (omni-plugin-cfg-parallel) and ``omni launch``.

Two gloo CPU processes (one torch thread each) must give the same images as one process: true CFG on
``shapes`` (separate calls), a generation without CFG, and batched CFG on ``tiny-sd15``; each rank must
compute only its branch after the first step. Context parallel needs CUDA and two devices: here it is
``unavailable`` with the reason, and its run test is ``gpu``-marked."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from omni.environment import Environment
from omni.matrix import CompatMatrix
from omni.plugins import get_registry
from omni.specs import Support

WORKER = Path(__file__).with_name("cfg_parallel_worker.py")
TIMEOUT = 900  # bounded: two ranks that lose each other fail at the collective timeout instead of hanging


def _free_port() -> int:
    from omni_plugin_cfg_parallel.launch import free_port

    return free_port()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", OMNI_DIST_TIMEOUT_S="300", **extra)
    return env


# ---------------------------------------------------------------------------- declarations and the matrix
def test_cfg_parallel_is_unavailable_in_one_process_and_says_how_to_launch():
    cell = CompatMatrix(get_registry(), env=Environment(processes=1)).cell("flux", "cfg_parallel")
    assert cell.status is Support.UNAVAILABLE
    assert any("needs 2 processes" in r and "omni launch --nproc 2" in r for r in cell.reasons), cell.reasons
    assert CompatMatrix(get_registry(), env=Environment(processes=2)).cell("flux", "cfg_parallel").status \
        is Support.SUPPORTED


def test_environment_reads_the_world_size_torchrun_sets(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert Environment.detect().processes == 2
    monkeypatch.delenv("WORLD_SIZE")
    assert Environment.detect().processes == 1


def test_context_parallel_needs_cuda_and_two_devices():
    cpu = CompatMatrix(get_registry(), env=Environment(processes=2)).cell("flux", "context_parallel")
    assert cpu.status is Support.UNAVAILABLE and any("CUDA" in r for r in cpu.reasons), cpu.reasons
    one_gpu = CompatMatrix(get_registry(), env=Environment(cuda_capabilities=((9, 0),), processes=2))
    assert any("2 accelerator devices" in r for r in one_gpu.cell("flux", "context_parallel").reasons)


def test_degrees_fill_in_and_refuse_a_product_that_is_not_the_world_size():
    from omni.sdk import Skip
    from omni_plugin_cfg_parallel.context import degrees

    assert degrees(4, 0, 0) == (1, 4) and degrees(4, 2, 0) == (2, 2) and degrees(4, 0, 1) == (4, 1)
    with pytest.raises(Skip, match="must equal the 4 processes"):
        degrees(4, 3, 0)


def test_cfg_parallel_conflicts_with_step_caches():
    plan = CompatMatrix(get_registry(), env=Environment(processes=2)).plan("flux", ["cfg_parallel", "teacache"])
    assert [s.name for s in plan.steps] == ["cfg_parallel"]
    assert any("lockstep" in r for s in plan.skipped for r in s.reasons), plan.skipped


def test_a_single_process_run_reports_the_skip_with_the_reason():
    import omni

    result = omni.run("tiny-flux", optimize=["cfg_parallel"])
    step = result.report.result("cfg_parallel")
    assert step.status != "applied" and "processes" in step.reason


# ---------------------------------------------------------------------------- two gloo ranks vs one process
@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Two ranks and the single-process reference of the same requests (worker: cfg_parallel_worker.py)."""
    out = tmp_path_factory.mktemp("cfg")
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(out / f"rank{r}.npz"), "parallel"],
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in (0, 1)]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=TIMEOUT)[0].decode(errors="replace"))
        finally:
            proc.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    spec = importlib.util.spec_from_file_location("cfg_parallel_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    worker.main(str(out / "single.npz"), parallel=False)  # the one-process reference, in this process
    load = lambda name: (dict(np.load(out / f"{name}.npz")),  # noqa: E731
                         json.loads((out / f"{name}.npz.json").read_text()))
    return load("single"), load("rank0"), load("rank1")


@pytest.mark.parametrize("case", ["shapes-0", "shapes-1", "tiny-sd15-0"])
def test_two_ranks_give_the_images_of_one_process(ranks, case):
    (single, _), (rank0, _), (rank1, _) = ranks
    assert single[case].shape == rank0[case].shape
    np.testing.assert_allclose(rank0[case], single[case], atol=1e-5)
    np.testing.assert_array_equal(rank0[case], rank1[case])  # lockstep: both ranks hold the same result


def test_each_rank_computes_only_its_branch_after_the_first_step(ranks):
    _, (_, counts0), (_, counts1) = ranks
    # 6 steps of true CFG: step 1 whole on both ranks (2 calls), then one call of the two per step
    assert counts0["shapes-0"] == {"computed": 2 + 5, "left_to_peer": 5, "split": True}
    assert counts1["shapes-0"] == {"computed": 2 + 5, "left_to_peer": 5, "split": True}
    # no CFG in the request: one call a step, run whole on both ranks
    assert counts0["shapes-1"] == {"computed": 4, "left_to_peer": 0, "split": False}
    # batched CFG: every call split in halves (computed counts the calls, each on half the batch)
    assert counts0["tiny-sd15-0"]["split"] is True and counts0["tiny-sd15-0"]["computed"] == 4


def test_report_has_the_parallel_layout_and_undo_removes_the_hooks(ranks):
    _, (_, counts0), (_, counts1) = ranks
    for counts, rank in ((counts0, 0), (counts1, 1)):
        applied = counts["shapes-applied"]
        assert applied["status"] == "applied"
        assert {k: applied["details"][k] for k in ("rank", "world_size", "backend", "mode")} == \
            {"rank": rank, "world_size": 2, "backend": "gloo", "mode": "separate"}
        assert counts["tiny-sd15-applied"]["details"]["mode"] == "batched"
        assert counts["shapes-undone"] == {"hook": False, "scheduler_wrapped": False}


# ---------------------------------------------------------------------------- omni launch
def test_launch_runs_two_ranks_and_only_rank_0_writes(tmp_path):
    out = tmp_path / "two.png"
    proc = subprocess.run([sys.executable, "-m", "omni", "launch", "--nproc", "2", "--", "run", "shapes",
                           "-O", "cfg_parallel", "--steps", "3", "-o", str(out), "--json"],
                          env=_env(), capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # rank 0's report only: the other rank printed nothing here
    step = next(r for r in report["config_resolved"] if r["name"] == "cfg_parallel")
    assert step["status"] == "applied" and step["details"]["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.png", "two.report.json"]


def test_launch_refuses_other_commands_and_shows_a_failing_rank(tmp_path):
    other = subprocess.run([sys.executable, "-m", "omni", "launch", "--nproc", "2", "--", "bench", "shapes"],
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and other.stderr.strip().count("\n") == 0 and "omni run" in other.stderr
    bad = subprocess.run([sys.executable, "-m", "omni", "launch", "--nproc", "2", "--", "run", "no-such-model"],
                         env=_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_context_parallel_on_two_gpus_matches_one(tmp_path):
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("context parallel needs 2 CUDA devices")
    one = tmp_path / "one.png"
    two = tmp_path / "two.png"
    base = subprocess.run([sys.executable, "-m", "omni", "run", "tiny-flux", "-o", str(one)], env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert base.returncode == 0, base.stderr[-2000:]
    cp = subprocess.run([sys.executable, "-m", "omni", "launch", "--nproc", "2", "--", "run", "tiny-flux",
                         "-O", "context_parallel", "--strict", "-o", str(two)], env=_env(), capture_output=True,
                        text=True, timeout=TIMEOUT)
    assert cp.returncode == 0, cp.stderr[-2000:]
    from PIL import Image

    a = np.asarray(Image.open(one), dtype=np.float64)
    b = np.asarray(Image.open(two), dtype=np.float64)
    mse = ((a - b) ** 2).mean()
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 35.0
