"""Example optimization plugin: declarations in :mod:`.plugin`, code in :mod:`.impl`."""
