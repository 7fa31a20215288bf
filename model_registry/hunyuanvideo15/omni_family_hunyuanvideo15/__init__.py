"""omni family plugin for HunyuanVideo 1.5 (declarations in :mod:`omni_family_hunyuanvideo15.plugin`)."""
