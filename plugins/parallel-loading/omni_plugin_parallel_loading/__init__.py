"""Parallel shard loading for omni. Declarations in :mod:`.plugin`, code in :mod:`.impl`."""
