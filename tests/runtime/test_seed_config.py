"""Seed 000's config keys, verbatim, in one YAML: every key is accepted and every requested
optimization shows up in config_resolved with a status and (when not applied) a reason."""

import json
import os
import subprocess
import sys

import jsonschema

from omni.runtime.report import schema

SEED_YAML = """\
config:
  enable_model_cpu_offload: true
  enable_sequential_cpu_offload: true
  enable_group_offload: true
  group_offload_type: block_level
  group_offload_use_stream: true
  group_offload_disk_path: {disk}
  enable_vae_slicing: true
  enable_vae_tiling: true
  channels_last: true
  fuse_qkv: true
  quantization: int8
  quantization_backend: torchao
  enable_layerwise_casting: true
  layerwise_casting_storage_dtype: fp8_e4m3fn
  layerwise_casting_compute_dtype: bf16
  cache: tea_cache
  enable_tea_cache: true
  tea_cache_ratio: 0.2
  tea_cache_interval: 2
"""


def test_seed_000_yaml_is_applied_or_explained(tmp_path):
    cfg = tmp_path / "seed.yaml"
    cfg.write_text(SEED_YAML.format(disk=tmp_path / "offload"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMNI_CUDA_CAPABILITY": "none"}
    proc = subprocess.run([sys.executable, "-m", "omni", "run", "tiny-flux", "--config", str(cfg), "--json",
                           "--output", str(tmp_path / "out.png")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, schema())
    by = {r["name"]: r for r in report["config_resolved"]}
    expected = {"model_cpu_offload", "sequential_cpu_offload", "group_offload", "vae_slicing", "vae_tiling",
                "channels_last", "fuse_qkv", "torchao", "layerwise_casting", "teacache"}
    assert expected <= set(by), sorted(expected - set(by))
    for name, res in by.items():
        assert res["status"] in ("applied", "skipped", "failed"), (name, res)
        if res["status"] != "applied":
            assert res["reason"], (name, res)
    # what a CPU host can and cannot do, with the reasons the matrix gives
    assert by["model_cpu_offload"]["status"] == "skipped" and "accelerator" in by["model_cpu_offload"]["reason"]
    assert by["vae_tiling"]["status"] == "applied" and by["teacache"]["status"] == "applied"
    assert by["teacache"]["options"]["rel_l1_thresh"] == 0.2 and by["teacache"]["options"]["interval"] == 2
    assert by["channels_last"]["status"] == "skipped"  # flux's denoiser is not conv-heavy
    assert "conflict" in (by["layerwise_casting"]["reason"] or "") or by["torchao"]["status"] != "applied"
    assert report["cache_hits"] and report["cache_hits"][0]["method"] == "teacache"
