"""omni-plugin-cfg-parallel: multi-process parallelism on torch.distributed (see docs/scaling.md)."""
