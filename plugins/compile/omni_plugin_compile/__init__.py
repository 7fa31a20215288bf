"""torch.compile for omni (regional by default). Declarations in :mod:`.plugin`, code in :mod:`.impl`."""
