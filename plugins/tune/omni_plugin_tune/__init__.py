"""omni-plugin-tune: ``omni tune MODEL`` finds, by measurement, the fastest configuration that keeps a
quality floor within a memory budget (see docs/tune.md)."""
