"""omni family plugin for Qwen-Image (declarations in :mod:`omni_family_qwenimage.plugin`)."""
