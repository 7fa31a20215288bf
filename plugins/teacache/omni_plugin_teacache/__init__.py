"""TeaCache for omni: written here because neither diffusers nor cache-dit ships it.

Declarations: :mod:`.plugin`; family data and traits: :mod:`.facts`; hooks: :mod:`.hooks`; probe
points: :mod:`.probes`; applying it: :mod:`.impl`; calibration (``omni calibrate teacache``):
:mod:`.calibrate`; calibration files: :mod:`.store`.
"""
