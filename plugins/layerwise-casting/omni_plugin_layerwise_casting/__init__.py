"""omni plugin: layerwise casting (low-precision weight storage, cast per layer at compute). Declarations in :mod:`.plugin`, code in :mod:`.impl`."""
