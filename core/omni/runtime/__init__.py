"""The run path: sessions (load + optimize once), generations, the engine (see docs/architecture.md)."""
