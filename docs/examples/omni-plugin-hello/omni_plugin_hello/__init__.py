"""Example service plugin: a preset, a CLI command and a step observer, in one module."""
