"""Registers ``omni tune`` (nothing heavy is imported until the command runs)."""

from omni.sdk import hookimpl


@hookimpl
def omni_register_commands(app):
    from omni_plugin_tune.cli import register

    register(app)
