"""Choosing adapters per request (``lora.adapters``) without reloading the model.

* :class:`Resident` (no compile-stage step planned): each adapter is a peft adapter of the pipeline,
  named as the user named it; at most ``max_loaded`` stay loaded, the least recently used is deleted
  first; a request activates its set with ``set_adapters`` (with weights) or disables LoRA.
* :class:`Hotswap` (a compile-stage step is planned): the denoiser holds fixed *slots*, one per
  adapter in ``paths``, prepared by diffusers' ``enable_lora_hotswap`` before the first adapter (ranks
  padded to the largest known, scalings turned into tensors). A request copies its adapters' weights
  into slots (``load_lora_weights(..., hotswap=True)``) and writes each slot's scale into those tensors
  in place (``set_adapters`` would put Python floats back, which a compiled graph has baked in);
  unused slots get scale 0. The compiled graph keeps seeing the same tensors: no recompilation.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from omni.sdk import UsageError

from omni_plugin_lora.library import Adapter, Library, check_adapter, parse_active

WHERE = "lora.adapters"


class Switcher:
    """What both ways share: adapter lookup (checked once), the load-time set, counters."""

    mode = ""

    def __init__(self, pipe: Any, family: str, library: Library, known: list[Adapter],
                 load_time: list[tuple[str, float]]) -> None:
        self.pipe, self.family, self.library = pipe, family, library
        self.known = {a.name: a for a in known}
        self.load_time = list(load_time)
        self.active: list[tuple[str, float]] = []
        self.counts = {"loads": 0, "swaps": 0, "evictions": 0}

    def adapter(self, name: str) -> Adapter:
        if name not in self.known:
            path = self.library.named(name, WHERE)
            self.known[name] = check_adapter(self.pipe, self.family, name, path, WHERE)
        return self.known[name]

    def reconfigure(self, options: dict[str, Any]) -> None:
        wanted = parse_active(options.get("adapters", ""), WHERE)
        self.activate(self.load_time if wanted is None else wanted)

    def activate(self, wanted: list[tuple[str, float]]) -> None:
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        return {"mode": self.mode, "active": dict(self.active), **self.counts}


class Resident(Switcher):
    mode = "resident"

    def __init__(self, *args: Any, max_loaded: int) -> None:
        super().__init__(*args)
        self.max_loaded = max_loaded
        self.loaded: OrderedDict[str, Adapter] = OrderedDict()

    def start(self, adapters: list[Adapter]) -> None:
        for adapter in adapters:
            self._load(adapter)
        self.activate(self.load_time)

    def _load(self, adapter: Adapter) -> None:
        self.pipe.load_lora_weights(adapter.path, adapter_name=adapter.name)
        self.loaded[adapter.name] = adapter
        self.counts["loads"] += 1

    def activate(self, wanted: list[tuple[str, float]]) -> None:
        if len(wanted) > self.max_loaded:
            raise UsageError(f"{WHERE}: {len(wanted)} adapters asked for, lora.max_loaded is {self.max_loaded}")
        adapters = [self.adapter(name) for name, _ in wanted]  # every name is checked before anything changes
        names = {a.name for a in adapters}
        for adapter in adapters:
            if adapter.name in self.loaded:
                self.loaded.move_to_end(adapter.name)
                continue
            while len(self.loaded) >= self.max_loaded:
                victim = next(n for n in self.loaded if n not in names)
                self.pipe.delete_adapters(victim)
                del self.loaded[victim]
                self.counts["evictions"] += 1
            self._load(adapter)
        if wanted:
            self.pipe.enable_lora()
            self.pipe.set_adapters([n for n, _ in wanted], adapter_weights=[s for _, s in wanted])
        else:
            self.pipe.disable_lora()
        self.active = list(wanted)

    def details(self) -> dict[str, Any]:
        return {**super().details(), "loaded": list(self.loaded), "max_loaded": self.max_loaded}


def lora_layers(modules: list[Any], slot: str) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for module in modules for m in module.modules() if isinstance(m, LoraLayer) and slot in m.scaling]


class Hotswap(Switcher):
    mode = "hotswap"

    def __init__(self, *args: Any, denoisers: list[Any], target_rank: int) -> None:
        super().__init__(*args)
        self.denoisers = denoisers
        self.target_rank = target_rank
        self.slots: list[str] = []
        self.holds: list[Adapter] = []  # what each slot holds now
        self.shape: list[frozenset[str]] = []  # the modules each slot has layers on
        self.base: dict[str, list[tuple[Any, float]]] = {}  # slot -> (layer, scaling without the user's weight)

    def start(self, adapters: list[Adapter]) -> None:
        for i, adapter in enumerate(adapters):
            self._swappable(adapter)
            slot = f"omni_slot_{i}"
            # before each slot's adapter: pad every slot to the target rank and make scalings tensors
            self.pipe.enable_lora_hotswap(target_rank=self.target_rank, check_compiled="error" if i == 0 else "ignore")
            self.pipe.load_lora_weights(adapter.path, adapter_name=slot)
            self.slots.append(slot)
            self.holds.append(adapter)
            self.shape.append(adapter.modules)
            self.counts["loads"] += 1
        for module in self.denoisers:
            module.set_adapter(list(self.slots))  # every slot active; unused ones get scale 0
        for slot in self.slots:
            self._record(slot)
        self.activate(self.load_time)

    def _swappable(self, adapter: Adapter) -> None:
        if adapter.text_encoder:
            raise UsageError(f"{WHERE}: {adapter.name} has text-encoder layers, which diffusers cannot hot-swap; "
                             "under compile use denoiser-only adapters (or fuse it: lora_fused)")
        if adapter.rank > self.target_rank:
            raise UsageError(f"{WHERE}: {adapter.name} has rank {adapter.rank}, above the hot-swap slots' rank "
                             f"{self.target_rank} (the largest rank in lora.paths and lora.library)")

    def _record(self, slot: str) -> None:
        self.base[slot] = [(layer, float(layer.scaling[slot])) for layer in lora_layers(self.denoisers, slot)]

    def _place(self, adapters: list[Adapter]) -> list[int]:
        """A slot for each adapter: where it already is, else a free slot whose layers cover it."""
        placed: list[int | None] = [next((i for i, held in enumerate(self.holds) if held.name == a.name), None)
                                    for a in adapters]
        for k, adapter in enumerate(adapters):
            if placed[k] is not None:
                continue
            free = [i for i in range(len(self.slots)) if i not in placed and adapter.modules <= self.shape[i]]
            if not free:
                missing = sorted(adapter.modules - self.shape[0])[:1] or ["(every slot is taken)"]
                raise UsageError(f"{WHERE}: {adapter.name} cannot be hot-swapped: no free slot has layers on "
                                 f"{missing[0]} (slots are shaped by the adapters in lora.paths)")
            placed[k] = free[0]
        return [p for p in placed if p is not None]

    def activate(self, wanted: list[tuple[str, float]]) -> None:
        if len(wanted) > len(self.slots):
            raise UsageError(f"{WHERE}: {len(wanted)} adapters asked for; under compile there are {len(self.slots)} "
                             "hot-swap slot(s), one per adapter in lora.paths")
        adapters = [self.adapter(name) for name, _ in wanted]
        for adapter in adapters:
            self._swappable(adapter)
        places = self._place(adapters)
        weights = [0.0] * len(self.slots)
        for adapter, (_, scale), slot_index in zip(adapters, wanted, places):
            slot = self.slots[slot_index]
            if self.holds[slot_index].name != adapter.name:
                self.pipe.load_lora_weights(adapter.path, adapter_name=slot, hotswap=True)
                self.holds[slot_index] = adapter
                self._record(slot)
                self.counts["swaps"] += 1
            weights[slot_index] = scale
        for slot, weight in zip(self.slots, weights):
            for layer, base in self.base[slot]:
                layer.scaling[slot].fill_(base * weight)
        self.active = list(wanted)

    def details(self) -> dict[str, Any]:
        return {**super().details(), "slots": {s: a.name for s, a in zip(self.slots, self.holds)},
                "target_rank": self.target_rank}
