"""The plugin guide's hello-world plugins (docs/examples/) installed as a third party would install them, and run
through the real CLI: a family for a pipeline with only the legacy callback API (PixArt-alpha), an optimization,
and a service plugin (preset, command, step observer)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omni.testing.fake_dist import install_project

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    for project in sorted(EXAMPLES.iterdir()):
        install_project(project, root)
    return root


def omni(site, *args, check=0):
    env = {**os.environ, "PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "omni", *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == check, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def test_examples_load_as_active_plugins(site):
    data = json.loads(omni(site, "plugins", "--json").stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    for name in ("pixart", "attention_slicing", "hello"):
        assert by_name[name]["status"] == "active", by_name[name]
    assert "family:pixart" in by_name["pixart"]["provides"]
    assert not [f for f in data["findings"] if "pixart" in f or "attention_slicing" in f]


def test_legacy_callback_pipeline_gets_step_timings_and_cache_hits(site, tmp_path):
    report = json.loads(omni(site, "run", "tiny-pixart", "-o", str(tmp_path / "a.png"), "--json").stdout)
    assert len(report["timings"]["steps"]) == 8 and all(t > 0 for t in report["timings"]["steps"])
    report = json.loads(omni(site, "run", "tiny-pixart", "-o", str(tmp_path / "b.png"), "--json",
                             "--optimize", "first_block_cache", "--set", "first_block_cache.threshold=0.5").stdout)
    hits = next(c for c in report["cache_hits"] if c["method"] == "first_block_cache")
    assert len(hits["steps"]) == 8 and hits["reused"] > 0 and hits["computed"] > 0


def test_bench_of_a_legacy_callback_pipeline_reports_steps(site):
    data = json.loads(omni(site, "bench", "tiny-pixart", "--optimize", "first_block_cache", "--set",
                           "first_block_cache.threshold=0.5", "--runs", "1", "--warmup", "0", "--json").stdout)
    assert data["optimized"]["median_step_s"] > 0 and data["optimized"]["cache_reused"] > 0


@pytest.mark.slow
def test_verify_proves_the_example_family_claims(site):
    out = omni(site, "verify", "--family", "pixart").stdout
    assert "3 cell(s): 3 passed, 0 failed" in out


@pytest.mark.slow
def test_verify_proves_the_example_optimization_and_records_local_proofs(site, tmp_path):
    out = omni(site, "verify", "--optimization", "attention_slicing").stdout
    assert "1 cell(s): 1 passed, 0 failed" in out
    # sdxl has the trait but nobody claims the cell: an author proves it locally, it stays untested
    proc = omni(site, "verify", "--optimization", "attention_slicing", "--family", "sdxl", "--include-untested")
    assert "1 cell(s): 1 passed, 0 failed" in proc.stdout and "local proofs recorded" in proc.stderr
    cells = json.loads(omni(site, "capabilities", "tiny-sdxl", "--json").stdout)["optimizations"]
    cell = next(c for c in cells if c["optimization"] == "attention_slicing")
    assert cell["status"] == "untested" and any("verified locally on" in r for r in cell["reasons"])


def test_service_example_command_preset_and_step_observer(site, tmp_path):
    assert "hello tiny-pixart: family pixart" in omni(site, "hello", "tiny-pixart").stdout
    report = json.loads(omni(site, "run", "tiny-flux", "--preset", "low-memory-decode", "-o", str(tmp_path / "c.png"),
                             "--json").stdout)
    applied = {r["name"] for r in report["config_resolved"] if r["status"] == "applied"}
    assert {"vae_slicing", "vae_tiling"} <= applied
    assert any(n.startswith("hello: vae_tiling took") for n in report["notes"])
    assert any(n.startswith("hello: load:flux took") for n in report["notes"])
