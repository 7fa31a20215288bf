"""``omni run`` with bad arguments, paths and signals (issue 14): one ``error:`` line and exit 2,
checked before anything loads, no file left behind; help that reads like the docs (issue 15)."""

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("omni_fuzz_cli", Path(__file__).with_name("test_fuzz_cli.py"))
fuzz_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_cli)


@pytest.fixture(scope="module")
def unwritable():
    """A folder nobody may write in: a read-only one for a normal user; for root (which ignores
    permission bits) a read-only kernel file system."""
    if os.geteuid() != 0:
        folder = tempfile.mkdtemp(prefix="omni-ro-")
        os.chmod(folder, 0o555)
        yield folder
        os.chmod(folder, 0o755)
        os.rmdir(folder)
        return
    for folder in ("/sys", "/proc/sys"):
        try:
            fd, probe = tempfile.mkstemp(dir=folder)
        except OSError:
            yield folder
            return
        os.close(fd)
        os.unlink(probe)
    pytest.skip("running as root with no read-only file system to write into")


def _cases(ro):
    import torch

    cases = [
        (["tiny-sd15", "--height", "36"], "--height: height 36 is not a multiple of 8 for sd15"),
        (["tiny-wan", "--height", "36"], "--height: height 36 is not a multiple of 16 for wan"),
        (["tiny-flux", "--height", "40"], "--height: height 40 is not a multiple of 16 for flux (the pipeline would "
                                          "silently use 32)"),
        (["tiny-flux", "--height", "8", "--width", "8"], "--height: 8 is below flux's minimum 16"),
        (["tiny-flux", "--seed", "18446744073709551616"], "--seed: must be at most 18446744073709551615"),
        (["tiny-flux", "--steps", "10000000000000"], "--steps: must be at most 1000"),
        (["tiny-wan", "--frames", "2"], "--frames: 2 frames: wan takes 4k+1 frames"),
        (["tiny-flux", "--frames", "5"], "--frames applies to video models"),
        (["tiny-flux", "--dtype", "float8_e4m3fn"], "--dtype: float8_e4m3fn is a storage format"),
        (["tiny-flux", "--height", "abc"], "Invalid value for '--height'"),
        (["black-forest-labs/FLUX.1-dev"], "black-forest-labs/FLUX.1-dev is not in the local Hugging Face cache"),
        (["tiny-flux", "--preset", ""], "preset: the name is empty"),
        (["tiny-flux", "--set", "tea_cache_ratio=0.1", "--set", "teacache.rel_l1_thresh=0.9"],
         "teacache.rel_l1_thresh is set twice with different values"),
        (["tiny-flux", "--config", "adir.png"], "config file adir.png is a folder"),
        (["tiny-flux", "-o", "same.png", "--report", "same.png"], "--output and --report name the same file"),
        (["tiny-flux", "-o", "adir.png"], "--output adir.png is a folder"),
        (["tiny-flux", "-o", "afile/x.png"], "--output afile/x.png: "),
        (["tiny-flux", "-o", f"{ro}/x.png"], f"--output {ro}/x.png: cannot write in {ro}"),
        (["tiny-flux", "-o", f"{ro}/missing/x.png"], f"--output {ro}/missing/x.png: cannot write in {ro}"),
        (["tiny-flux", "-o", "exists.png"], "--output exists.png exists; pass --force to overwrite it"),
        (["tiny-flux", "-o", "new.png", "--report", "adir.png"], "--report adir.png is a folder"),
        (["tiny-flux", "-o", "new.png", "--report", f"{ro}/r.json"], f"--report {ro}/r.json: cannot write in {ro}"),
    ]
    if not torch.cuda.is_available():
        cases.append((["tiny-flux", "--device", "cuda"], "--device cuda: this host cannot run on CUDA"))
    return cases


def test_bad_arguments_are_one_line_before_loading(tmp_path, unwritable):
    for argv, message in _cases(unwritable):
        folder = tmp_path / f"case{len(os.listdir(tmp_path))}"
        folder.mkdir()
        (folder / "adir.png").mkdir()
        (folder / "afile").write_text("a plain file\n")
        (folder / "exists.png").write_bytes(b"an earlier result")
        before = sorted(os.listdir(folder))
        outcome, stderr = fuzz_cli.run_in_process(["run", *argv], str(folder))
        assert outcome == "refused", (argv, outcome, stderr)
        line = next(line for line in stderr.splitlines() if line.startswith("error:"))
        assert line.startswith(f"error: {message}"), (argv, line)
        assert "local_files_only" not in stderr
        assert sorted(os.listdir(folder)) == before, argv  # no report, no image, no probe file
        assert (folder / "exists.png").read_bytes() == b"an earlier result"


def test_help_reads_like_the_docs(monkeypatch):
    from typer.testing import CliRunner

    from omni.cli.app import app

    monkeypatch.setenv("COLUMNS", "220")
    text = CliRunner().invoke(app, ["run", "--help"]).stdout
    assert "Usage: omni run [OPTIONS] MODEL" in text and "{model}" not in text
    assert "<bool>" not in text
    assert "OmniRT" in text and "vLLM-Omni" in text and "optimization.option" in text and "(seed," not in text
    bench = CliRunner().invoke(app, ["bench", "--help"]).stdout
    for option in ("--runs", "--warmup", "--steps", "--device", "--json"):
        row = next(line for line in bench.splitlines() if f"{option} " in line)
        assert len(row.split(option, 1)[1].replace("<int range>", "").strip(" │<>intrage[]x=0-9")) > 10, row


def _omni(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "omni", *args], env=env, capture_output=False, text=True,
                          timeout=300, **kw)


def test_closed_stdout_is_not_a_traceback(tmp_path):
    close_stdout = lambda: os.close(1)  # noqa: E731 - `omni ... >&-`
    proc = _omni(["presets"], stderr=subprocess.PIPE, preexec_fn=close_stdout, cwd=tmp_path)
    assert proc.returncode == 0 and "stdout is closed" in proc.stderr and "Traceback" not in proc.stderr
    proc = _omni(["run", "tiny-flux", "--height", "36"], stderr=subprocess.PIPE, preexec_fn=close_stdout, cwd=tmp_path)
    assert proc.returncode == 2 and "error: --height" in proc.stderr and "Traceback" not in proc.stderr


def test_double_ctrl_c_exits_130_with_a_message(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "omni", "run", "tiny-flux", "--steps", "1000", "-o",
                             str(tmp_path / "x.png")], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    try:
        seen = proc.stderr.readline()  # "omni: loading tiny-flux": the CLI and its handlers are up
        assert "loading" in seen, seen
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert code == 130, (code, rest)
    assert "interrupted" in rest and "Traceback" not in rest, rest
