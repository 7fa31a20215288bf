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


def main() -> None:
    _quiet_library_noise()
    _plugin_commands()
    app()
