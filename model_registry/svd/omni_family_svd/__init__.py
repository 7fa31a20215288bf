"""omni family plugin for Stable Video Diffusion (declarations in :mod:`omni_family_svd.plugin`)."""
