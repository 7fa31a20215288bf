"""Library import noise, kept out of omni's output (the CLI and the Python API alike).

Importing diffusers imports torchao, which on a host without its GPU kernels logs "Failed to load
…/_C_*.so" per kernel file and makes torch's pytree log deprecation warnings; diffusers then warns
that it cannot import torchao's tensor classes. None of it concerns a run. ``import omni`` calls
:func:`quiet_import_noise` once; ``OMNI_LIBRARY_WARNINGS=1`` keeps the messages, and a logger the
caller has already configured (a level set) is left alone."""

from __future__ import annotations

import logging
import os

NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer")


def quiet_import_noise() -> None:
    """Raise the loggers in :data:`NOISY_LOGGERS` to ERROR unless ``OMNI_LIBRARY_WARNINGS`` is set
    or the logger already has a level."""
    if os.environ.get("OMNI_LIBRARY_WARNINGS", "") not in ("", "0"):
        return
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
