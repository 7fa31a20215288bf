"""GGUF weights for omni. Declarations in :mod:`.plugin`, loading in :mod:`.impl`, writing in :mod:`.convert`."""
