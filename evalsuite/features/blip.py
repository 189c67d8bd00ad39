"""ImageReward's network on transformers' BLIP classes (the ``image-reward`` package's forward).

The reference (``image-reward`` 1.5, ``ImageReward.py`` and ``models/BLIP/``) is BLIP's ViT-L/16
(timm-style ``VisionTransformer``: 224 px, width 1024, depth 24, 16 heads, pre-norm, LayerNorm
eps 1e-6, exact GELU, fused ``qkv`` with bias, a final norm) feeding the cross-attention of
BLIP's BERT (``med.py`` ``BertModel`` without pooler, built from ``med_config.json`` with
``encoder_width`` set to the vision width); the last hidden state of token 0 goes through a
5-layer MLP with no activations (768-1024-128-64-16-1), then ``(r - mean) / std``.

transformers' ``BlipVisionModel`` and ``BlipTextModel`` are ports of those two files, so only
the key names differ (``checkpoint_to_model``): the vision side renames (``cls_token`` ->
``class_embedding``, ``blocks.i.attn.proj`` -> ``layers.i.self_attn.projection``, ``norm`` ->
``post_layernorm``...; the fused qkv has the same layout), the text side keeps BERT's names.
Numerics to configure: vision ``layer_norm_eps=1e-6`` (BLIP's ``partial(nn.LayerNorm,
eps=1e-6)``; transformers' default is 1e-5), ``hidden_act="gelu"`` (exact, as ``nn.GELU()``),
and ``is_decoder=True`` in the text config, which is only what makes transformers build the
cross-attention layers (the forward is called with ``is_decoder=False``: bidirectional
self-attention, as the reference's ``mode='multimodal'`` encoder). One difference remains: the
reference masks padding with -10000, transformers with the dtype's minimum; both are exactly
zero after the float32 softmax. The package's ``score`` does not put the ``[ENC]`` token at
position 0 (BLIP's ITM head does; ImageReward keeps ``[CLS]``), and neither does this.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np

from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.features.resize import CLIP_MEAN, CLIP_STD

REWARD_MEAN = 0.16717362830052426  # ImageReward.py: self.mean, self.std
REWARD_STD = 1.0333394966054072
MAX_TOKENS = 35  # ImageReward.score: padding="max_length", truncation=True, max_length=35

# Vision transformer and reward head per architecture: "ViT-L-16" is create_vit('large', 224);
# "tiny" is the parity test's (benchmarks/imagereward_reference.py).
ARCHS: dict[str, dict[str, Any]] = {
    "ViT-L-16": {"image_size": 224, "patch_size": 16, "hidden_size": 1024,
                 "num_hidden_layers": 24, "num_attention_heads": 16, "head": (1024, 128, 64, 16)},
    "tiny": {"image_size": 32, "patch_size": 8, "hidden_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 2, "head": (32, 16, 8, 4)},
}
# BLIP's configs/med_config.json (what THUDM/ImageReward's med_config.json holds), used when
# random weights are allowed and the file is missing; "tiny" is the parity test's.
BUILTIN_MED_CONFIGS: dict[str, dict[str, Any]] = {
    "ViT-L-16": {"hidden_act": "gelu", "hidden_size": 768, "intermediate_size": 3072,
                 "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
                 "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
                 "vocab_size": 30524, "encoder_width": 768, "add_cross_attention": True},
    "tiny": {"hidden_act": "gelu", "hidden_size": 16, "intermediate_size": 32,
             "layer_norm_eps": 1e-12, "max_position_embeddings": 40, "num_attention_heads": 2,
             "num_hidden_layers": 2, "pad_token_id": 0, "vocab_size": 144, "encoder_width": 16,
             "add_cross_attention": True},
}
# Checkpoint tensors the score never uses (BLIP_Pretrain's contrastive projections, a buffer).
UNUSED_KEYS = ("blip.vision_proj.", "blip.text_proj.", "blip.text_encoder.embeddings.position_ids")
# BLIP vit.py names -> BlipVisionModel names: whole-prefix renames, then renames inside blocks
_VISION_PREFIXES = (("cls_token", "embeddings.class_embedding"),
                    ("pos_embed", "embeddings.position_embedding"),
                    ("patch_embed.proj.", "embeddings.patch_embedding."),
                    ("norm.", "post_layernorm."), ("blocks.", "encoder.layers."))
_VISION_INFIXES = ((".norm1.", ".layer_norm1."), (".norm2.", ".layer_norm2."),
                   (".attn.qkv.", ".self_attn.qkv."), (".attn.proj.", ".self_attn.projection."))


def check_arch(arch: str) -> dict[str, Any]:
    """The architecture spec ``arch``, or a ConfigError naming the choices."""
    if arch not in ARCHS:
        raise ConfigError(f"imagereward arch={arch!r}; choose one of {sorted(ARCHS)}")
    return ARCHS[arch]


def vision_config(arch: str) -> Any:
    """transformers ``BlipVisionConfig`` of BLIP's ViT for ``arch`` (eps 1e-6, exact GELU)."""
    from transformers import BlipVisionConfig

    spec = check_arch(arch)
    return BlipVisionConfig(hidden_size=spec["hidden_size"],
                            intermediate_size=4 * spec["hidden_size"],  # mlp_ratio 4
                            num_hidden_layers=spec["num_hidden_layers"],
                            num_attention_heads=spec["num_attention_heads"],
                            image_size=spec["image_size"], patch_size=spec["patch_size"],
                            hidden_act="gelu", layer_norm_eps=1e-6, attention_dropout=0.0)


def text_config(med: Mapping[str, Any], vision_width: int) -> Any:
    """transformers ``BlipTextConfig`` from a BLIP ``med_config.json`` (``encoder_width`` is
    replaced by the vision width, as ``BLIP_Pretrain`` does)."""
    from transformers import BlipTextConfig

    if not med.get("add_cross_attention", False):
        raise ConfigError("imagereward: med_config.json must set add_cross_attention: true "
                          "(ImageReward's text encoder attends to the image in every layer)")
    if med.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError("imagereward: only absolute position embeddings are supported, "
                          f"med_config.json has {med['position_embedding_type']!r}")
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
            "pad_token_id")
    missing = [k for k in keys if k not in med]
    if missing:
        raise ConfigError(f"imagereward: med_config.json lacks {missing}")
    return BlipTextConfig(**{k: med[k] for k in keys}, encoder_hidden_size=vision_width,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                          is_decoder=True, use_cache=False,
                          bos_token_id=None, eos_token_id=None, sep_token_id=None)


def build_network(arch: str, med: Mapping[str, Any]) -> Any:
    """An ``ImageRewardNet`` of ``arch`` with the text encoder of ``med`` (random weights;
    build it under ``seeded_init`` for reproducible stand-ins)."""
    return _net_class()(arch, med)


def _net_class() -> type:
    import torch
    import torch.nn as nn
    from transformers import BlipTextModel, BlipVisionModel

    class ImageRewardNet(nn.Module):
        """BLIP ViT -> BLIP BERT with cross-attention -> token 0 -> MLP -> normalised reward."""

        def __init__(self, arch: str, med: Mapping[str, Any]) -> None:
            super().__init__()
            vcfg = vision_config(arch)
            self.vision = BlipVisionModel(vcfg)
            self.text = BlipTextModel(text_config(med, vcfg.hidden_size), add_pooling_layer=False)
            w = (int(med["hidden_size"]), *check_arch(arch)["head"])
            # ImageReward.MLP: Linear/Dropout alternating, no activation (indices kept)
            self.head = nn.Sequential(nn.Linear(w[0], w[1]), nn.Dropout(0.2),
                                      nn.Linear(w[1], w[2]), nn.Dropout(0.2),
                                      nn.Linear(w[2], w[3]), nn.Dropout(0.1),
                                      nn.Linear(w[3], w[4]), nn.Linear(w[4], 1))
            self.eval()

        def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> torch.Tensor:
            """Normalised rewards (B,) of preprocessed images and tokenized prompts."""
            image_embeds = self.vision(pixel_values=pixel_values).last_hidden_state
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                    device=image_embeds.device)
            out = self.text(input_ids=input_ids, attention_mask=attention_mask,
                            encoder_hidden_states=image_embeds,
                            encoder_attention_mask=image_atts, is_decoder=False)
            rewards = self.head(out.last_hidden_state[:, 0, :].float())
            return ((rewards - REWARD_MEAN) / REWARD_STD)[:, 0]

    return ImageRewardNet


def _vision_name(name: str) -> str:
    for old, new in _VISION_PREFIXES:
        if name.startswith(old):
            name = new + name[len(old):]
            break
    for old, new in _VISION_INFIXES:
        name = name.replace(old, new)
    return name


def checkpoint_to_model(state: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``ImageReward.pt``'s state dict (``blip.visual_encoder.*``, ``blip.text_encoder.*``,
    ``mlp.layers.*``) renamed to ``ImageRewardNet``'s, and the names of the other tensors (the
    package loads with ``strict=False``, so it ignores them too; the known unused ones,
    ``UNUSED_KEYS``, are dropped without a word)."""
    out: dict[str, Any] = {}
    ignored = []
    for key, value in state.items():
        if key.startswith(UNUSED_KEYS):
            continue
        if key.startswith("blip.visual_encoder."):
            out[f"vision.{_vision_name(key[len('blip.visual_encoder.'):])}"] = value
        elif key.startswith("blip.text_encoder."):
            out[f"text.{key[len('blip.text_encoder.'):]}"] = value
        elif key.startswith("mlp.layers."):
            out[f"head.{key[len('mlp.layers.'):]}"] = value
        else:
            ignored.append(key)
    return out, ignored


def load_checkpoint(net: Any, path: str) -> list[str]:
    """Load ``ImageReward.pt`` (a plain state dict) into ``net``. Every tensor of ``net`` must
    be there with its shape (the package would silently keep random ones); returns the names
    of checkpoint tensors that were not used."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or non-torch file
        raise EvalsuiteError(f"imagereward: cannot read {path} as a torch state dict ({e})") \
            from None
    if not isinstance(state, dict):
        raise EvalsuiteError(f"imagereward: {path} is not a state dict")
    mapped, ignored = checkpoint_to_model(state)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(mapped))
    bad = sorted(k for k in set(mapped) & set(expected) if mapped[k].shape != expected[k].shape)
    unknown = sorted(set(mapped) - set(expected))
    if missing or bad or unknown:
        raise EvalsuiteError(f"imagereward: {path} does not fit this architecture (missing "
                             f"{missing[:3]}, wrong shapes {bad[:3]}, unknown {unknown[:3]}); "
                             "is it ImageReward.pt? check arch= and the med_config.json")
    net.load_state_dict(mapped, strict=True)
    return ignored


def build_tokenizer(vocab: str | dict[str, int]) -> Any:
    """BLIP's ``init_tokenizer`` on a local vocabulary: BERT uncased WordPiece, plus ``[DEC]``
    as bos and ``[ENC]`` as an additional special token (ids after the vocabulary)."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


def standin_vocab() -> dict[str, int]:
    """A character-level WordPiece vocabulary (special tokens, printable ASCII, and each as a
    ``##`` continuation) for runs with random weights and no ``vocab.txt``."""
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    return {t: i for i, t in enumerate(tokens)}


def preprocess(image: np.ndarray, size: int) -> Any:
    """ImageReward's ``_transform(size)`` on one uint8 RGB image: torchvision Resize(size,
    bicubic) of the shorter side on the PIL image, CenterCrop, ToTensor, CLIP Normalize."""
    from PIL import Image

    return _transform(size)(Image.fromarray(image).convert("RGB"))


@functools.lru_cache(maxsize=4)
def _transform(size: int) -> Any:
    """The torchvision pipeline, built once per size (it is applied per image)."""
    from torchvision.transforms import (CenterCrop, Compose, InterpolationMode, Normalize,
                                        Resize, ToTensor)

    return Compose([Resize(size, interpolation=InterpolationMode.BICUBIC), CenterCrop(size),
                    ToTensor(), Normalize(CLIP_MEAN.tolist(), CLIP_STD.tolist())])
