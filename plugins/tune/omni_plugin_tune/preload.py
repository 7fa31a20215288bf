"""Imported once by the fork server that starts the measuring processes: torch, diffusers, omni's
plugins and the classes of the tuned model's components (``$OMNI_TUNE_MODEL``; no weights are read)
are loaded before the fork, so a configuration costs a fork and a model load, not a Python start-up
and its imports (the parent ``omni tune`` process never imports torch). Every run of the model needs
these, so each measuring process holds what an ``omni run`` of that configuration would hold; an
optimization's own modules are imported only by the processes that apply it. The libraries'
import-time chatter (optional kernels that fail to load) goes to /dev/null."""

import importlib
import os

_saved = os.dup(2)
_null = os.open(os.devnull, os.O_WRONLY)
os.dup2(_null, 2)
try:
    import diffusers
    import torch  # noqa: F401

    import omni  # noqa: F401
    from omni.sdk import OmniError, model_components, model_folder, read_model_index, registry, resolve

    registry()
    model = os.environ.get("OMNI_TUNE_MODEL")
    if model:
        try:
            folder = model_folder(resolve(model))
            getattr(diffusers, read_model_index(folder).get("_class_name", ""), None)
            for library, class_name in model_components(folder).values():
                getattr(importlib.import_module(library), class_name, None)
        except (OmniError, ImportError, AttributeError):
            pass  # only a speed-up: each process imports what it needs anyway
finally:
    os.dup2(_saved, 2)
    os.close(_saved)
    os.close(_null)
