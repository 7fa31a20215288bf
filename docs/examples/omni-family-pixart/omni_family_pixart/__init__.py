"""Example third-party family plugin: PixArt-alpha, written only from docs/plugin-guide.md."""
