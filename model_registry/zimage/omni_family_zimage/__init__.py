"""omni family plugin for Z-Image (declarations in :mod:`omni_family_zimage.plugin`)."""
