"""omni family plugin for FLUX.2 (declarations in :mod:`omni_family_flux2.plugin`)."""
