"""Load a model only when something needs it, and apply its ablations exactly once.

A re-run whose samples and metric values are all cached never loads the model (nor imports
torch or diffusers); a run that needs the baseline's samples gets them from the same
components before surgery, so only one copy of the weights is ever in memory.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Sequence

import numpy as np

from evalsuite.io import sha256_json

log = logging.getLogger(__name__)


class ComponentCache:
    """Pipeline components loaded once per process and lent to several runs (a study's).

    A study runs ``evalsuite run`` once per action on the same model; reloading SD v1.5 from
    disk for each costs far more than one copy of its UNet. Each borrower gets its own deep
    copy of the UNet (ablation surgery changes it in place); the other components are shared.
    The pipeline moves them to its device and dtype in place, so those are part of the key:
    a float16 borrower never hands its converted modules to a float32 one.
    """

    def __init__(self) -> None:
        self._loaded: dict[str, dict[str, Any]] = {}
        self.loads = 0  # how many times a source was actually loaded (tests, logs)

    def borrow(self, source: Any, dtype: str, device: str) -> dict[str, Any]:
        """The components of ``source`` for ``dtype`` on ``device``: loaded on first request,
        with a private UNet."""
        key = sha256_json({"model": source.identity(), "dtype": dtype, "device": device})
        if key not in self._loaded:
            self._loaded[key] = source.load()
            self.loads += 1
        else:
            log.info("reusing the pipeline loaded earlier in this process")
        components = dict(self._loaded[key])
        components["unet"] = copy.deepcopy(components["unet"])
        return components


class LazyModel:
    """The components of ``source``, loaded on first use; ablations applied on request.

    ``cache``: borrow the components from a ``ComponentCache`` instead of loading them.
    ``recovered``: a saved ablated UNet folder (recovery by distillation) that replaces the
    surgery's zero-shot UNet: reloaded strictly with its recorded surgery re-applied.
    """

    def __init__(self, source: Any, specs: Sequence[Any], sampler: Any, device: str,
                 cache: ComponentCache | None = None):
        self.source, self.specs, self.sampler, self.device = source, list(specs), sampler, device
        self.cache = cache
        self._components: dict[str, Any] | None = None
        self._ablated = False
        self._generators: dict[bool, Any] = {}
        self.recovered: Any = None

    @property
    def loaded(self) -> bool:
        return self._components is not None

    def components(self) -> dict[str, Any]:
        """The loaded components (loading them now if needed); callers must not change them."""
        return self._load()

    def _load(self) -> dict[str, Any]:
        if self._components is None:
            self._components = (
                self.cache.borrow(self.source, self.sampler.dtype, self.device)
                if self.cache is not None else self.source.load())
        return self._components

    def generator(self, ablated: bool = True) -> Any:
        """The pipeline's generator, with (default) or without the ablations."""
        from evalsuite.models.generator import DiffusersGenerator  # torch: only when generating

        ablated = ablated and bool(self.specs)
        if not ablated and self._ablated:
            raise RuntimeError("the baseline generator must be used before the ablations are applied")
        if ablated not in self._generators:
            components = self._load()
            if ablated:
                from evalsuite.ablations import apply_ablations  # torch: only when generating

                if self.recovered is not None:
                    from evalsuite.ablations import load_ablated_unet

                    components["unet"] = load_ablated_unet(self.recovered)
                else:
                    components["unet"] = apply_ablations(components["unet"], self.specs)
                self._ablated = True
            self._generators[ablated] = DiffusersGenerator(components, self.sampler,
                                                           self.source.resolution, self.device)
        return self._generators[ablated]


class LazyGenerator:
    """A ``Generator`` that loads ``model`` only if ``generate`` is actually called."""

    def __init__(self, model: LazyModel, ablated: bool):
        self.model, self.ablated = model, ablated
        self.resolution = model.source.resolution

    def generate(self, texts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        return self.model.generator(self.ablated).generate(texts, seeds)
