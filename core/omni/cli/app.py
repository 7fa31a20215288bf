"""Typer application: global options and command registration."""

from __future__ import annotations

from typing import Optional

import typer

from omni.cli import common

app = typer.Typer(
    name="omni",
    help="omni: apply diffusion-inference optimizations to diffusers pipelines, and tell the truth about them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if not value:
        return
    import omni

    reg = common.registry()
    con = common.console()
    con.print(f"omni-core {omni.__version__}")
    for rec in reg.plugins:
        con.print(f"  {rec.name}: {rec.distribution} {rec.version} [{rec.status}]")
    raise typer.Exit(0)


@app.callback()
def _main(
    no_plugins: bool = typer.Option(False, "--no-plugins", help="Load no plugins (same as OMNI_LOAD_PLUGINS='')."),
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show omni and plugin versions."
    ),
) -> None:
    common._state["no_plugins"] = no_plugins


def _register() -> None:
    from omni.cli import inspect_cmds

    inspect_cmds.register(app)
    try:
        from omni.cli import run_cmds
    except ImportError:  # pragma: no cover - run path not installed yet
        return
    run_cmds.register(app)
    from omni.cli import verify_cmd

    verify_cmd.register(app)
    from omni.cli import bench_cmd

    bench_cmd.register(app)


_register()
common.use_command_class(app)


def _plugin_commands() -> None:
    """Let plugins add commands (``omni_register_commands``); a broken one is reported, not fatal."""
    import sys

    from omni.errors import OmniError

    common._state["no_plugins"] = "--no-plugins" in sys.argv[1:]
    try:
        reg = common.registry()
    except OmniError:  # strict plugin mode: let the command report it
        common._state["registry"] = None
        return
    for impl in reg.pm.hook.omni_register_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:  # noqa: BLE001
            common.err(f"warning: plugin {impl.plugin_name!r} failed to add its commands: {exc}")


def _quiet_library_noise() -> None:
    """The CLI prints its own progress and report; keep the libraries' import-time warnings
    (torchao GPU kernels missing on CPU, torch pytree deprecations) out of it. Env vars win."""
    import logging
    import os

    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if os.environ.get("OMNI_LIBRARY_WARNINGS", "") in ("", "0"):
        for name in ("torchao", "torch.utils._pytree"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _closed_streams() -> None:
    """``omni run ... >&-``: Python starts with ``sys.stdout = None``; write it to the null device
    (the files and the report are still written) and say so, instead of failing on the first print."""
    import os
    import sys

    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        common.err("omni: stdout is closed: printed output is discarded (files and reports are still written)")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def _second_interrupt_exits() -> None:
    """The first Ctrl-C stops the run cleanly (KeyboardInterrupt: the error handler says
    "interrupted", exit 130); a second one while that cleanup runs exits at once, with a message
    (Python's default would end the process by the signal, exit -2, without a word)."""
    import os
    import signal

    count = [0]

    def on_sigint(signum: int, frame: object) -> None:
        count[0] += 1
        if count[0] == 1:
            raise KeyboardInterrupt
        os.write(2, b"omni: interrupted again: exiting now (exit 130)\n")
        os._exit(130)

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (embedded use): keep Python's default
        pass


def main() -> None:
    import signal

    _closed_streams()
    _second_interrupt_exits()
    _quiet_library_noise()
    _plugin_commands()
    common.use_command_class(app)
    try:
        app()
    finally:  # the exit code is decided: a Ctrl-C while Python shuts down (it restores the default
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # handler then) must not turn it into death by signal
