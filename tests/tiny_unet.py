"""The tiny UNet as the ablation, surgery and profiler tests use it.

Import what a test module needs; importing ``one_thread`` into a module makes it apply there
(pytest collects fixtures from a module's namespace, imported ones included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import torch

from evalsuite.ablations import AblationSpec, build_ablated_unet
from evalsuite.models.tiny import TINY_UNET_CONFIG

#: (sample, timestep, text embeddings) for one forward pass of the tiny UNet, batch 2.
Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for the module: the two cores are shared with other jobs, and
    multi-threaded tiny convolutions can stall where one thread is faster."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_unet(specs: Sequence[AblationSpec] = ()) -> torch.nn.Module:
    """The tiny UNet with ``specs`` applied, on CPU, in eval mode, initialised from seed 0."""
    torch.manual_seed(0)
    return build_ablated_unet(TINY_UNET_CONFIG, list(specs), device="cpu").eval()


def tiny_inputs() -> Inputs:
    """Seeded inputs: two 8x8 latents, timesteps 10 and 900, 77 text tokens of width 32."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 8, 8, generator=g), torch.tensor([10, 900]), torch.randn(2, 77, 32, generator=g)


def forward(unet: torch.nn.Module, inputs: Inputs) -> torch.Tensor:
    """The UNet's output for ``inputs``, without autograd."""
    sample, t, text = inputs
    with torch.no_grad():
        return unet(sample, t, encoder_hidden_states=text).sample
