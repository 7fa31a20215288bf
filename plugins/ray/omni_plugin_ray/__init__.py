"""omni-plugin-ray: omni serve on Ray Serve (see docs/scaling.md)."""
