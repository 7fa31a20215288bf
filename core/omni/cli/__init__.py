"""The ``omni`` command line (Typer + rich). ``main`` is the console-script entry point."""

from omni.cli.app import app, main

__all__ = ["app", "main"]
