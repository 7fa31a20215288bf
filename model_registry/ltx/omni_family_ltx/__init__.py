"""omni family plugin for LTX-Video (declarations in :mod:`omni_family_ltx.plugin`)."""
