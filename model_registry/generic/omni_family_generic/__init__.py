"""The generic family: any diffusers pipeline no family claims (declaration in :mod:`.plugin`, inference in
:mod:`.infer`)."""
