"""omni family plugin for Wan2.1 / Wan2.2 video (declarations in :mod:`omni_family_wan.plugin`)."""
