"""Declaration only (no torch import): a catch-all family. Its facts are inferred per model by
:func:`omni_family_generic.infer.facts`; every cell is at most ``untested``, since nobody claims it."""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl

# placeholder facts: never used for a model (infer replaces them); the matrix lists no row for a catch-all family
PLACEHOLDER = FamilyFacts(denoiser="dit", denoiser_components=("transformer", "unet"), modality="image",
                          tasks=("t2i",), guidance="cfg")


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="generic",
        summary="any diffusers pipeline no installed family claims; traits inferred from model_index.json and, "
                "once loaded, from the modules (every cell untested)",
        pipelines=(),
        facts=PLACEHOLDER,
        infer="omni_family_generic.infer:facts",
        default_generation={"num_inference_steps": 20},
    )
