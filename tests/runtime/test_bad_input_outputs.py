"""Outputs and faults (issue 14, "Output paths and writes"): a failed write is an error and lists no
artifact, a report that cannot be written never hides the run's own error, a plugin's UsageError
leaves no step ``planned``, and a disk-offload path creates only what the run removes."""

import os
import tempfile

import numpy as np
import pytest

import omni
from omni.errors import OmniError, UsageError
from omni.runtime.output import OutputError, check_target, save
from omni.runtime.report import RunReport
from omni.sdk import OptimizationSpec, Stage


def _unwritable() -> str:
    if os.geteuid() != 0:
        folder = tempfile.mkdtemp(prefix="omni-ro-")
        os.chmod(folder, 0o555)
        return folder
    for folder in ("/sys", "/proc/sys"):
        try:
            fd, probe = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        os.close(fd)
        os.unlink(probe)
    pytest.skip("running as root with no read-only file system to write into")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # imageio closing a failed writer
@pytest.mark.parametrize("name, shape, video", [("x.mp4", (1, 3, 16, 16, 3), True), ("x.gif", (1, 3, 16, 16, 3), True),
                                                ("x.png", (1, 16, 16, 3), False)])
def test_a_failed_write_is_an_error_and_lists_nothing(name, shape, video):
    folder = _unwritable()
    with pytest.raises(OutputError, match=f"writing {folder}/{name} failed"):
        save(np.zeros(shape, np.float32), f"{folder}/{name}", video=video)


def test_a_batch_that_fails_half_way_names_what_was_written(tmp_path, monkeypatch):
    from omni.runtime import output

    real = output._write
    calls = []

    def second_fails(item, p, **kw):
        calls.append(p)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(item, p, **kw)

    monkeypatch.setattr(output, "_write", second_fails)
    with pytest.raises(OutputError, match=r"wrote .*x-0.png; writing .*x-1.png failed: OSError"):
        save(np.zeros((2, 16, 16, 3), np.float32), str(tmp_path / "x.png"), video=False)
    assert sorted(os.listdir(tmp_path)) == ["x-0.png"]  # no partial file of the failed one


def test_one_overwrite_rule_for_run_and_convert(tmp_path):
    from omni_plugin_gguf.convert import convert_command

    existing = tmp_path / "done.gguf"
    existing.write_bytes(b"earlier work")
    with pytest.raises(UsageError) as info:
        convert_command("tiny-flux", to="gguf", qtype="Q8_0", output=str(existing), component=None, force=False,
                        json_out=True)
    with pytest.raises(UsageError) as same:
        check_target(str(existing), "--output", force=False)
    assert str(info.value) == str(same.value) == f"--output {existing} exists; pass --force to overwrite it"
    check_target(str(existing), "--output", force=True)
    assert existing.read_bytes() == b"earlier work"


def test_an_unwritable_report_never_hides_the_real_error(capsys):
    from omni.cli.run_cmds import _write_report

    report = RunReport(model="m", family="f", error="the real error")
    _write_report(report, f"{_unwritable()}/r.json", failing=True)  # one more line, no exception
    assert "the report could not be written" in capsys.readouterr().err
    with pytest.raises(OutputError, match="the run finished but its report could not be written"):
        _write_report(report, f"{_unwritable()}/r.json", failing=False)


def refuses(ctx, step):
    raise UsageError("h6_refuses: the weights file is corrupt")


class RefusingPlugin:
    @omni.hookimpl
    def omni_register_optimizations(self):
        yield OptimizationSpec(name="h6_refuses", stage=Stage.CACHE, summary="raises UsageError", impl=refuses,
                               lossless=True)


def test_a_plugins_usage_error_leaves_no_step_planned(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from omni.cli import run_cmds
    from omni.cli.app import app
    from omni.plugins import Selection, load_registry

    reg = load_registry(selection=Selection(), strict=False, extra=[("h6", RefusingPlugin())])
    # exit 2; in the written report the kernel marked the refusing step failed, and the step the run
    # never reached is skipped with the reason, not left pending
    monkeypatch.setattr(run_cmds, "registry", lambda: reg)
    out = tmp_path / "x.png"
    result = CliRunner().invoke(app, ["run", "tiny-flux", "-O", "h6_refuses,vae_slicing", "--steps", "1", "-o",
                                      str(out)])
    assert result.exit_code == 2 and "error: h6_refuses: the weights file is corrupt" in result.stderr
    import json

    data = json.loads((tmp_path / "x.report.json").read_text())
    written = {r["name"]: (r["status"], r["reason"] or "") for r in data["config_resolved"]}
    assert written["h6_refuses"][0] == "failed" and "corrupt" in data["error"]
    assert written["vae_slicing"][0] == "skipped" and "the run stopped first" in written["vae_slicing"][1]
    assert not out.exists()


def test_disk_offload_creates_only_what_it_removes(tmp_path):
    from omni.sdk import load

    deep = tmp_path / "missing" / "offload"
    with pytest.raises(UsageError, match="folder .*missing does not exist"):
        load("tiny-flux", sets={"group_offload_disk_path": str(deep)})
    assert os.listdir(tmp_path) == []
    fresh = tmp_path / "offload"
    session = load("tiny-flux", sets={"group_offload_disk_path": str(fresh)})
    assert session.report.result("disk_offload").status == "applied" and fresh.is_dir()
    assert session.undo() == [] and not fresh.exists()


def test_reports_write_whole_or_not_at_all(tmp_path):
    report = RunReport(model="m", family="f")
    report.timings["steps"] = [float("inf")]
    with pytest.raises(OmniError, match="non-finite"):
        report.write(str(tmp_path / "r.json"))
    assert os.listdir(tmp_path) == []
