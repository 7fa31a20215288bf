"""``omni run`` end to end in a subprocess: files written, --json mode, one-line errors."""

import json
import os
import subprocess
import sys

import jsonschema
from PIL import Image

from omni.runtime.report import schema


def omni(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "omni", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_run_writes_png_and_report_json_mode(tmp_path):
    out = tmp_path / "img.png"
    proc = omni("run", "tiny-flux", "--prompt", "a red circle on a blue background", "--optimize", "vae_slicing",
                "--output", str(out), "--steps", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # stdout holds only the JSON report
    jsonschema.validate(report, schema())
    assert report["generation"]["num_inference_steps"] == 3 and len(report["timings"]["steps"]) == 3
    assert report["config_resolved"][0]["status"] == "applied"
    assert Image.open(out).size == (64, 64)
    on_disk = json.loads((tmp_path / "img.report.json").read_text())
    assert on_disk["run_id"] == report["run_id"]
    assert {a["kind"] for a in on_disk["artifacts"]} == {"image", "report"}


def test_human_output_summarises(tmp_path):
    proc = omni("run", "tiny-flux", "--output", str(tmp_path / "x.png"), "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert "wrote image" in proc.stdout and "steps" in proc.stdout


def test_run_errors_are_one_line(tmp_path):
    cases = [
        (("run", "tiny-flux", "--set", "enable_vae_tilling=true"), "error: unknown config key 'enable_vae_tilling'"),
        (("run", "tiny-flux", "--output", str(tmp_path / "x.mp4")), "error: --output"),
        (("run", "tiny-flux", "--frames", "3"), "error: --frames applies to video models"),
        (("run", "tiny-flux", "--config", str(tmp_path / "none.yaml")), "error: config file"),
        (("run", "not-a-model"), "error: unknown model 'not-a-model'"),
        (("run", "flux"), "error: 'flux' names a family, not a model"),
    ]
    for args, message in cases:
        proc = omni(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        assert lines and lines[0].startswith(message), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
