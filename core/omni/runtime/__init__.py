"""The run path: executing a plan through the six stage hooks (see docs/architecture.md)."""
