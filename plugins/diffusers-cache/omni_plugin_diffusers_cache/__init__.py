"""diffusers' step caches for omni (all five live in ``diffusers.hooks``; omni delegates to them).

What this plugin adds around diffusers: a cache context for pipelines that never set one
(SD3/SD/SDXL), TaylorSeer identifiers that really match (Wan's defaults hook nothing),
a guard for FasterCache's first-step crash, a refusal when a config would hook no module,
and per-step hit counts read from the hooks' state (diffusers keeps no counters).

Declarations: :mod:`.plugin`; shared machinery: :mod:`.watch`; per-method ``apply``: :mod:`.impl`.
The hook names and state fields read here are diffusers 0.42 private API; the dependency is
pinned to that minor version and the tests exercise every reader.
"""
