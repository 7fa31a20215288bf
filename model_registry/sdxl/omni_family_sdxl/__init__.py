"""omni family plugin for Stable Diffusion XL (declarations in :mod:`omni_family_sdxl.plugin`)."""
