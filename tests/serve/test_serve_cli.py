"""``omni serve`` refuses bad arguments with one line and exit status 2, before loading the model
(the plugin's own command, in process, with ``Engine.load`` made to fail the test if reached)."""

from __future__ import annotations

import fcntl
import socket

import pytest
import typer
from omni_plugin_serve.plugin import omni_register_commands
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a group, so that "serve" is a subcommand
    omni_register_commands(app=app)
    return app


@pytest.fixture
def no_load(monkeypatch):
    from omni.runtime.engine import Engine

    def load(self):
        raise AssertionError("omni serve loaded the model before checking its arguments")

    monkeypatch.setattr(Engine, "load", load)


def test_bad_arguments_one_line_exit_2_before_loading(app, no_load, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    locked = tmp_path / "locked"
    locked.mkdir()
    lock = open(locked / "lock", "a+")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running server holds it
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    data = ["--data-dir", str(tmp_path / "data")]
    cases = {
        "--max-queue must be at least 1, got 0": ["tiny-flux", "--max-queue", "0", *data],
        "--port must be in 0..65535, got 70000": ["tiny-flux", "--port", "70000", *data],
        "--max-size must be at least 8, got 4": ["tiny-flux", "--max-size", "4", *data],
        "--api-key is empty": ["tiny-flux", "--api-key", " ", *data],
        "--dtype:": ["tiny-flux", "--dtype", "float7", *data],
        "--device must be cpu or cuda": ["tiny-flux", "--device", "tpu", *data],
        "unknown config key 'enable_vae_tilling'": ["tiny-flux", "--set", "enable_vae_tilling=true", *data],
        "unknown model 'not-a-model'": ["not-a-model", *data],
        f"--data-dir {a_file}": ["tiny-flux", "--data-dir", str(a_file)],
        f"--data-dir {locked} is in use by another omni serve": ["tiny-flux", "--data-dir", str(locked)],
        f"--host 127.0.0.1 --port {taken}: cannot listen": ["tiny-flux", "--port", str(taken), *data],
    }
    try:
        for message, args in cases.items():
            out = CliRunner().invoke(app, ["serve", *args])
            errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
            assert out.exit_code == 2, (message, out.output, out.exception)
            assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), (message, out.stderr)
            assert "Traceback" not in out.output and "loading" not in out.output, (message, out.output)
    finally:
        busy.close()
        lock.close()
