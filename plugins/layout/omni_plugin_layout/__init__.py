"""omni plugin: channels_last memory layout and fused QKV projections. Declarations in :mod:`.plugin`, code in :mod:`.impl`."""
