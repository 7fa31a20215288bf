"""omni family plugin for Stable Diffusion 1.x (declarations in :mod:`omni_family_sd15.plugin`)."""
