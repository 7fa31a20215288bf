"""LoRA adapters for omni. Declarations in :mod:`.plugin`; adapter files (resolve, read, validate) in
:mod:`.library`; applying them in :mod:`.impl`; switching per request in :mod:`.switch`; the shipped
shapes adapter in ``adapters/`` (trained by :mod:`.train_shapes`, measured by :mod:`.teal`)."""
