"""omni family plugin for Stable Diffusion 3 / 3.5 (declarations in :mod:`omni_family_sd3.plugin`)."""
