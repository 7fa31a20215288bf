"""diffusers' step caches for omni (all five live in ``diffusers.hooks``; omni delegates to them,
through ``enable_cache``/``disable_cache`` where the denoiser is a ``CacheMixin``).

What this plugin adds around diffusers: a cache context for pipelines that never set one
(SD3/SD/SDXL), TaylorSeer identifiers that really match (Wan's defaults hook nothing), per-context
state for PAB/FasterCache under separate CFG calls, a guard for FasterCache's first-step crash, a
refusal when a config would hook no module, per-step hit counts read from the hooks' state (diffusers
keeps no counters), per-request retuning of the installed hooks, and MagCache ratios the family
declares (``extras["mag_cache"]``).

Declarations: :mod:`.plugin`; family data: :mod:`.facts`; installing a cache: :mod:`.install`; the hit
readers and cache contexts: :mod:`.watch`; per-method ``impl``: :mod:`.impl`. The hook names and state
fields read here are diffusers 0.42 private API; the dependency is pinned to that minor version and
the tests exercise every reader.
"""
