"""cache-dit for omni: omni delegates the caching itself to the external ``cache-dit`` library.

cache-dit's DBCache ("dual block cache") runs the first ``Fn`` blocks of the denoiser's block stack
at every step, compares their residual with the previous step's and, while the relative change
stays under ``residual_diff_threshold``, skips the middle blocks and reuses their cached residual
(the last ``Bn`` blocks still run). A TaylorSeer calibrator can extrapolate the reused residual, and
SCM (steps computation masking) forces a fixed compute/cache pattern over the schedule.

Declarations (no torch import): :mod:`.plugin`; the CACHE-stage implementation: :mod:`.impl`;
per-instance containment and per-call refresh of cache-dit's pipeline patch: :mod:`.session`;
hit counters read from cache-dit's own cache contexts: :mod:`.counters`.
"""
