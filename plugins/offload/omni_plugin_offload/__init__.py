"""omni plugin: model / sequential / group / layerwise / disk offload (delegates to diffusers and accelerate). Declarations in :mod:`.plugin`, code in :mod:`.impl`."""
