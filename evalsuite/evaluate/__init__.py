"""The evaluation core, on plain objects: score images in one pass.

Nothing here sees a config. The task pipeline (``evalsuite.tasks``) builds the objects from
one and is the one caller of ``evaluate_sources`` in evalsuite; a notebook or a test can build
them by hand and call ``evaluate`` or ``evaluate_sources`` directly (samples come from
``evalsuite.produce.materialise`` with a ``TextToImage`` producer).

One pass: each image is decoded once; every metric that takes images (paired, text-image)
and every feature extractor that a distribution metric (FID, KID, CMMD) needs sees it in that
pass. Features are cached on disk per (image set, extractor identity) and reference
statistics per (reference set, protocol), so adding a metric or re-running computes only
what does not exist yet.

Metric values are cached too (``JsonCache``) under a key naming every input that changes
them: the metric's class, version and parameters, the weight files' sha256, the identity of
the images it scores (sample manifest, reference set, VAE) and the bootstrap settings. A
re-run therefore recomputes only what changed, and does not even load the model when nothing
did.

Reference sets: in memory (``ReferenceSet``), read lazily (``CocoReference``, an image source
itself), or imported statistics only (``StatsOnlyReference``). A reference's imported
statistics (``reference.stats``: metric name -> ``.npz``) replace the reference features of
that FID metric; metrics that need reference images a stats-only reference lacks are skipped
with the reason. One INFO line per reference feature file says whether it was computed or
reused (``reference statistics computed: ...`` / ``reference statistics reused: ...``).
"""

from __future__ import annotations

from evalsuite.evaluate.core import evaluate, evaluate_sources
from evalsuite.evaluate.options import EvalOptions, EvalResult, Inputs
from evalsuite.evaluate.reference import (attach_reference_stats, check_reference_stats,
                                          reference_features)

__all__ = ["EvalOptions", "EvalResult", "Inputs", "attach_reference_stats",
           "check_reference_stats", "evaluate", "evaluate_sources", "reference_features"]
