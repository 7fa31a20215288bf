"""Named presets (declarations in :mod:`.plugin`; ``lossless`` is computed in :mod:`.lossless`)."""
