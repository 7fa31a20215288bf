"""omni family plugin for AnimateDiff over SD 1.x and SDXL (declarations in :mod:`omni_family_animatediff.plugin`)."""
