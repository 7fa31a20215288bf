"""omni family plugin for FLUX.1 (declarations in :mod:`omni_family_flux.plugin`)."""
