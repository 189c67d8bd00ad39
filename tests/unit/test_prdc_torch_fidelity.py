"""Precision / recall: parity with torch-fidelity's ``prc`` on the same features.

torch-fidelity 0.4 (``metric_prc.prc_features_to_metric``, generated first) counts a point
inside a ball with ``<=`` on float32 ``torch.cdist`` distances; evalsuite follows the ``prdc``
package (strict ``<``, float64). On continuous features ties have probability zero, so the
counts agree exactly unless a distance falls within float32 rounding of a radius; the
tolerance stated is one sample (1/n); on these seeded features the counts are equal (the
values differ by torch-fidelity's float32 mean, < 1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evalsuite.metrics.functional.prdc import prdc

torch_fidelity = pytest.importorskip("torch_fidelity")


@pytest.mark.parametrize("n_gen,n_ref,shift", [(120, 150, 0.0), (200, 100, 0.5), (80, 80, 2.0)])
def test_precision_recall_equal_torch_fidelity(n_gen, n_ref, shift):
    from torch_fidelity.metric_prc import prc_features_to_metric

    rng = np.random.default_rng(n_gen + n_ref)
    gen = rng.normal(shift, 1.0, (n_gen, 64)).astype(np.float32)
    ref = rng.normal(0.0, 1.0, (n_ref, 64)).astype(np.float32)
    theirs = prc_features_to_metric(torch.from_numpy(gen), torch.from_numpy(ref),
                                    prc_neighborhood=3, prc_batch_size=10000,
                                    save_cpu_ram=False, verbose=False)
    ours = prdc(ref, gen, 3)
    # torch-fidelity averages in float32: compare the counts of samples inside the manifolds
    assert round(ours.precision * n_gen) == round(theirs["precision"] * n_gen)
    assert round(ours.recall * n_ref) == round(theirs["recall"] * n_ref)
    assert ours.precision == pytest.approx(theirs["precision"], abs=1e-6)
