"""Attention ablations: self-attention removal, shared K/V projections, ReLU attention.

All three act on the ``Attention`` modules inside transformer blocks (``attn1`` = self-,
``attn2`` = cross-attention in SD). Shared K/V and ReLU attention are implemented by one
attention processor, ``AblatedAttnProcessor``, so they compose in either order; the spec list
recorded in a saved model re-installs it on reload. Do not reset processors afterwards
(``set_default_attn_processor`` would bring back a ``to_v`` that no longer exists).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from torch import nn

from evalsuite.ablations.base import AblationSpec, TransformerLevelsSpec, iter_transformer_blocks

# ----------------------------------------------------------------------------------------------
# Processor


@dataclass(frozen=True)
class AblatedAttnProcessor:
    """SD-style attention with optional shared K/V projection and ReLU attention.

    - ``shared_kv``: values are the key projection, ``V = K = x W_k`` (``to_v`` is gone).
      With the same weights this is the exact op sequence of diffusers' ``AttnProcessor2_0``,
      so a model whose ``W_v == W_k`` gives bit-identical outputs.
    - ``relu``: softmax replaced by ReLU attention normalised by the number of keys
      (Wortsman et al. 2023, "Replacing softmax with ReLU in Vision Transformers"; the form
      MobileDiffusion fine-tunes into):  ``out = (ReLU(Q K^T / sqrt(d)) / L_k) V``,
      ``d`` = head dimension, ``L_k`` = key sequence length (77 text tokens for cross-attention,
      H*W for self-attention). Attention masks are not supported with ReLU attention.
    """

    shared_kv: bool = False
    relu: bool = False

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            if self.relu:
                raise NotImplementedError("ReLU attention does not support attention masks")
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = key if self.shared_kv else attn.to_v(encoder_hidden_states)

        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if self.relu:
            scores = torch.matmul(query, key.transpose(-1, -2)) * (head_dim**-0.5)
            hidden_states = torch.matmul(F.relu(scores) / key.shape[-2], value)
        else:
            hidden_states = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
            )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _update_processor(attn: Attention, **changes: bool) -> None:
    """Install an AblatedAttnProcessor carrying over any options already set on ``attn``."""
    current = attn.processor if isinstance(attn.processor, AblatedAttnProcessor) else AblatedAttnProcessor()
    attn.set_processor(dataclasses.replace(current, **changes))


def _iter_attention(unet: nn.Module, self_attention: bool, cross_attention: bool):
    """(path, Attention) for the selected kinds inside transformer blocks (removed ones skipped)."""
    for path, t2d, t in iter_transformer_blocks(unet):
        block = t2d.transformer_blocks[t]
        for name in ("attn1", "attn2"):
            attn = getattr(block, name, None)
            if isinstance(attn, Attention):
                wanted = cross_attention if attn.is_cross_attention else self_attention
                if wanted:
                    yield f"{path}.transformer_blocks.{t}.{name}", attn


# ----------------------------------------------------------------------------------------------
# Self-attention removal


class CrossAttnOnlyBlock(nn.Module):
    """A ``BasicTransformerBlock`` without its self-attention branch (and that branch's norm).

    Keeps the original block's ``norm2/attn2`` (cross-attention) and ``norm3/ff`` modules under
    the same names, so their state-dict keys and weights are unchanged; ``norm1/attn1`` are
    dropped. Forward: ``h = h + attn2(norm2(h), text); h = h + ff(norm3(h))`` -- exactly the
    original block with the self-attention residual term removed.
    """

    def __init__(self, block: BasicTransformerBlock):
        super().__init__()
        self.norm2, self.attn2, self.norm3, self.ff = block.norm2, block.attn2, block.norm3, block.ff

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        timestep: torch.Tensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        class_labels: torch.Tensor | None = None,
        added_cond_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        kwargs = {k: v for k, v in (cross_attention_kwargs or {}).items() if k != "gligen"}
        norm = self.norm2(hidden_states)
        hidden_states = hidden_states + self.attn2(
            norm, encoder_hidden_states=encoder_hidden_states, attention_mask=encoder_attention_mask, **kwargs
        )
        return hidden_states + self.ff(self.norm3(hidden_states))


@dataclass(frozen=True)
class NoSelfAttention(TransformerLevelsSpec):
    """Remove self-attention, keep cross-attention and the FFN, at the given levels.

    MobileDiffusion removes SA at 32x32 and the outer 16x16 (keeping CA). Weight rule: the
    block keeps its cross-attention, FFN and their norms; ``attn1``/``norm1`` are discarded.
    """

    name = "no_sa_highres"
    acts_as = "remove self-attention from"
    levels: tuple[int, ...] = (1, 2)

    def apply(self, unet: nn.Module) -> None:
        changed = 0
        for path, t2d, t in list(iter_transformer_blocks(unet, set(self.levels))):
            block = t2d.transformer_blocks[t]
            if isinstance(block, BasicTransformerBlock):
                if block.norm_type != "layer_norm" or block.attn2 is None or block.only_cross_attention:
                    raise self.error("levels", f"{path} is not an SD-style transformer block (norm, attn1, attn2, ff)")
                t2d.transformer_blocks[t] = CrossAttnOnlyBlock(block)
                changed += 1
        if not changed:
            raise self.error("levels", f"no transformer blocks left at levels {list(self.levels)}")


# ----------------------------------------------------------------------------------------------
# Shared K/V and ReLU attention


@dataclass(frozen=True)
class AttentionKindsSpec(AblationSpec):
    """Base of the ablations that change self- and/or cross-attention layers alike."""

    self_attention: bool = True
    cross_attention: bool = True

    def check_params(self) -> None:
        self.require_bool("self_attention", self.self_attention)
        self.require_bool("cross_attention", self.cross_attention)
        if not (self.self_attention or self.cross_attention):
            raise self.error("self_attention", "self_attention and cross_attention are both false: nothing to change")

    def targets(self, unet: nn.Module) -> list[tuple[str, Attention]]:
        """(path, Attention) of the selected kinds; an error if other ablations left none."""
        found = list(_iter_attention(unet, self.self_attention, self.cross_attention))
        if not found:
            raise self.error("self_attention" if self.self_attention else "cross_attention", "no attention layers left")
        return found


@dataclass(frozen=True)
class SharedKV(AttentionKindsSpec):
    """One projection for keys and values (MobileDiffusion: -5% parameters, no quality loss).

    Weight rule: the shared projection is the key projection ``W_k``; ``W_v`` is dropped.
    """

    name = "shared_kv"

    def apply(self, unet: nn.Module) -> None:
        for path, attn in self.targets(unet):
            if attn.to_v is not None and attn.to_v.weight.shape != attn.to_k.weight.shape:
                raise self.error("cross_attention", f"{path}: to_k and to_v shapes differ, cannot share")
            attn.to_v = None
            _update_processor(attn, shared_kv=True)


@dataclass(frozen=True)
class ReluAttention(AttentionKindsSpec):
    """Softmax replaced by ReLU attention, ``(ReLU(QK^T/sqrt(d)) / L_k) V`` (no weight change).

    MobileDiffusion obtains it by fine-tuning; on pretrained softmax weights, zero-shot quality
    is not expected to hold.
    """

    name = "relu_attention"

    def apply(self, unet: nn.Module) -> None:
        for _, attn in self.targets(unet):
            _update_processor(attn, relu=True)
