"""pytorch-fid's Inception v3 architecture (FID blocks), built without any download.

Shared by the feature extractor (``evalsuite.features.inception``) and the seeded stand-in
weight files (``evalsuite.features.standins``), which both need the bare network.
"""

from __future__ import annotations

from typing import Any, Mapping

from evalsuite.features.base import seeded_init

BLOCK_BY_DIMS = {64: 0, 192: 1, 768: 2, 2048: 3}  # pytorch-fid's InceptionV3.BLOCK_INDEX_BY_DIM


def fid_inception_net() -> Any:
    """pytorch-fid's ``fid_inception_v3()`` architecture, randomly initialised (seeded), without
    its download: torchvision Inception v3 with the FID blocks patched in."""
    from pytorch_fid.inception import (FIDInceptionA, FIDInceptionC, FIDInceptionE_1,
                                       FIDInceptionE_2, _inception_v3)

    with seeded_init():
        net = _inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE_1(1280)
        net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def build_pytorch_fid_blocks(state_dict: Mapping[str, Any] | None, dims: int = 2048) -> Any:
    """pytorch-fid's ``InceptionV3`` blocks up to ``dims``, from a state dict (None: random).

    Same modules and order as ``pytorch_fid.inception.InceptionV3(use_fid_inception=True)``.
    """
    import torch.nn as nn

    net = fid_inception_net()
    if state_dict is not None:
        net.load_state_dict(state_dict)
    blocks = [[net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3,
               nn.MaxPool2d(kernel_size=3, stride=2)],
              [net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)],
              [net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b,
               net.Mixed_6c, net.Mixed_6d, net.Mixed_6e],
              [net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1))]]
    layers = [m for b in blocks[:BLOCK_BY_DIMS[dims] + 1] for m in b]
    return nn.Sequential(*layers).eval()

