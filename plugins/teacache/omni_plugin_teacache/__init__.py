"""TeaCache for omni: written here because neither diffusers nor cache-dit ships it.

Declarations: :mod:`.plugin`; hooks: :mod:`.hooks`; probe points: :mod:`.probes`;
calibration (``omni calibrate teacache``): :mod:`.calibrate`; calibration files: :mod:`.store`.
"""
