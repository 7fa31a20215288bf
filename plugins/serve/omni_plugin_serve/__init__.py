"""omni-plugin-serve: ``omni serve MODEL``, an HTTP server over :class:`omni.Engine` (see docs/serving.md)."""
