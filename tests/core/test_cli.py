"""The inspection commands end to end, in subprocesses (real entry points, real exit codes)."""

import json
import os
import subprocess
import sys

import pytest

BLOCKERS = ("torch", "diffusers", "transformers")


def omni(*args, env=None, check=None):
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "omni", *args], capture_output=True, text=True, env=full_env,
                          timeout=120)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def blocked_path(tmp_path_factory):
    """A PYTHONPATH entry whose torch/diffusers/transformers raise on import."""
    root = tmp_path_factory.mktemp("blockers")
    for name in BLOCKERS:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(f"raise ImportError('{name} must not be imported by this command')\n")
    return str(root)


@pytest.mark.parametrize("args", [("plugins", "--json"), ("capabilities", "tiny-flux", "--json"),
                                  ("matrix", "--markdown"), ("matrix", "--json"), ("--version",)])
def test_inspection_commands_never_import_torch(blocked_path, args):
    env = {"PYTHONPATH": blocked_path + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = omni(*args, env=env, check=0)
    assert "must not be imported" not in proc.stderr


def test_plugins_json_lists_real_plugins():
    data = json.loads(omni("plugins", "--json", check=0).stdout)
    flux = next(p for p in data["plugins"] if p["name"] == "flux")
    assert flux["distribution"] == "omni-family-flux" and flux["status"] == "active"
    assert "family:flux" in flux["provides"] and "model:tiny-flux" in flux["provides"]


def test_capabilities_json_shape():
    data = json.loads(omni("capabilities", "tiny-flux", "--json", check=0).stdout)
    assert data["model"]["family"] == "flux" and data["model"]["kind"] == "named"
    assert "denoiser:dit" in data["family"]["traits"]
    for row in data["optimizations"]:
        assert row["status"] in ("supported", "unsupported", "untested", "unavailable", "disabled")
        assert row["declared_by"] or row["status"] == "untested"


def test_capabilities_of_local_folder_and_hub_id(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    assert json.loads(omni("capabilities", str(tmp_path), "--json", check=0).stdout)["model"]["kind"] == "local"
    data = json.loads(omni("capabilities", "black-forest-labs/FLUX.1-schnell", "--json", check=0).stdout)
    assert data["model"]["kind"] == "hub"


@pytest.mark.parametrize(
    "args, message",
    [
        (("capabilities", "fluxx"), "error: unknown model 'fluxx' (did you mean flux"),
        (("capabilities", "./no/such/folder"), "error: model folder ./no/such/folder does not exist"),
        (("capabilities", "tiny-flux", "--disable", "nope"), "error: cannot disable unknown optimization 'nope'"),
        (("matrix", "--json", "--markdown"), "error: --json and --markdown are exclusive"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message):
    proc = omni(*args, check=2)
    assert proc.stderr.strip().startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_no_plugins_flag_and_allowlist():
    data = json.loads(omni("--no-plugins", "plugins", "--json", check=0).stdout)
    assert data["plugins"] and {p["status"] for p in data["plugins"]} == {"disabled"}
    proc = omni("capabilities", "tiny-flux", env={"OMNI_LOAD_PLUGINS": ""}, check=2)
    assert "unknown model 'tiny-flux'" in proc.stderr


def test_strict_plugins_turns_a_broken_plugin_into_exit_1(tmp_path):
    from omni.testing.fake_dist import fake_dist

    fake_dist(tmp_path, "omni-plugin-broken", "9.9", {"broken": "broken_mod"}, {"broken_mod": "raise ValueError('x')\n"})
    env = {"PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    relaxed = omni("plugins", "--json", env=env, check=0)
    broken = next(p for p in json.loads(relaxed.stdout)["plugins"] if p["name"] == "broken")
    assert broken["status"] == "failed" and "ValueError: x" in broken["error"]
    strict = omni("plugins", env={**env, "OMNI_STRICT_PLUGINS": "1"}, check=1)
    assert strict.stderr.strip().startswith("error: plugin 'broken' (omni-plugin-broken 9.9) failed")


def test_version_lists_plugins():
    out = omni("--version", check=0).stdout
    assert out.startswith("omni-core ") and "omni-family-flux" in out
