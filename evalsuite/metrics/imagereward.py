"""ImageReward (Xu et al. 2023, THUDM/ImageReward): a BLIP reward model of human preference.

As the ``image-reward`` package's ``ImageReward.score(prompt, image)`` (v1.5, checkpoint
"ImageReward-v1.0"): images through ``_transform(224)`` (torchvision: shorter side to 224,
bicubic on the PIL image; centre crop 224; x/255; CLIP mean/std); prompts through BLIP's
``init_tokenizer`` (BERT uncased WordPiece + ``[DEC]``/``[ENC]``; padded to 35 tokens,
truncated); BLIP ViT-L/16 image tokens feed the cross-attention of BLIP's BERT; token 0 of its
last hidden state -> MLP -> ``(r - 0.16717) / 1.03334``. The metric is the mean over (image,
prompt) pairs, per-image values kept. The network is ``evalsuite.features.blip`` (transformers'
BLIP classes with the checkpoint's names mapped); parity with the package's own code on a
tiny seeded model is tested (``tests/unit/test_imagereward.py``).

Three local files, none downloaded: ``ImageReward.pt`` (its state dict), ``med_config.json``
(the text encoder's BERT configuration, from the same Hugging Face repo) and BERT's
``vocab.txt`` (bert-base-uncased). With ``metrics.allow_random_weights=true`` a missing file is
replaced by seeded random weights, BLIP's published med_config values, or a character-level
stand-in vocabulary, and the record says which.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.features import blip
from evalsuite.features.base import seeded_init
from evalsuite.metrics.preference import PromptImageScore, random_record

if TYPE_CHECKING:
    from evalsuite.assets import ResolvedAsset

IMAGEREWARD_ASSET = "imagereward_v1"
MED_CONFIG_ASSET = "imagereward_med_config"
VOCAB_ASSET = "bert_base_uncased_vocab"


def read_med_config(found: "ResolvedAsset | None", arch: str) -> tuple[dict[str, Any], dict]:
    """The med_config (from the file, or the built-in values when it is missing and random
    weights are allowed) and its record."""
    if found is None:
        return dict(blip.BUILTIN_MED_CONFIGS[arch]), {
            "file": None, "builtin": "BLIP configs/med_config.json values (evalsuite.features."
                                     "blip.BUILTIN_MED_CONFIGS)", "verified": False}
    try:
        med = json.loads(found.path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EvalsuiteError(f"imagereward: cannot read {found.path} as JSON ({e})") from None
    if not isinstance(med, dict):
        raise EvalsuiteError(f"imagereward: {found.path} is not a JSON object")
    return med, found.to_record()


def load_tokenizer(vocab: "ResolvedAsset | None", med: Mapping[str, Any]) -> tuple[Any, dict]:
    """BLIP's tokenizer on ``vocab.txt`` (or the stand-in vocabulary when it is missing and
    random weights are allowed) and its record; it must fit the model's embedding table."""
    tokenizer = blip.build_tokenizer(str(vocab.path) if vocab else blip.standin_vocab())
    if len(tokenizer) > int(med["vocab_size"]):
        raise EvalsuiteError(f"imagereward: the vocabulary has {len(tokenizer)} tokens with "
                             f"[DEC]/[ENC], more than the model's {med['vocab_size']}")
    return tokenizer, vocab.to_record() if vocab else {
        "file": None, "standin": "character-level WordPiece (features.blip.standin_vocab)",
        "verified": False}


class ImageReward(PromptImageScore):
    """Mean ImageReward of (image, prompt) pairs."""

    name = "imagereward"

    def __init__(self, arch: str = "ViT-L-16", device: str = "cpu") -> None:
        blip.check_arch(arch)
        self.arch = arch
        super().__init__(device)

    def params(self) -> dict[str, Any]:
        return {"model": f"ImageReward-v1.0 (image-reward 1.5): BLIP {self.arch} + BLIP BERT "
                         "with cross-attention (transformers BlipVisionModel/BlipTextModel, "
                         "checkpoint keys mapped), ImageReward.pt",
                "preprocess": "torchvision Resize(224, bicubic) of the shorter side, "
                              "CenterCrop(224), ToTensor, CLIP mean/std",
                "tokenizer": f"BERT uncased WordPiece + [DEC], [ENC]; max_length "
                             f"{blip.MAX_TOKENS}, padded, truncated; [CLS] kept at position 0",
                "score": f"MLP(text token 0); (r - {blip.REWARD_MEAN}) / {blip.REWARD_STD}",
                "precision": "float32"}

    def required_assets(self) -> list[str]:
        return [IMAGEREWARD_ASSET, MED_CONFIG_ASSET, VOCAB_ASSET]

    def prepare(self, weights: Mapping[str, "ResolvedAsset | None"]) -> None:
        found = weights[IMAGEREWARD_ASSET]
        med, med_record = read_med_config(weights[MED_CONFIG_ASSET], self.arch)
        with seeded_init():
            net = blip.build_network(self.arch, med)
        ignored = blip.load_checkpoint(net, str(found.path)) if found is not None else []
        self._tokenizer, vocab_record = load_tokenizer(weights[VOCAB_ASSET], med)
        self._model = net.to(self.device)
        self._size = int(blip.ARCHS[self.arch]["image_size"])
        record = found.to_record() if found else random_record()
        if ignored:  # tensors the score does not use (the package ignores them too)
            record["ignored_tensors"] = {"count": len(ignored), "first": ignored[:5]}
        # ImageReward.pt's record at the top (the shape every weights reader expects: sha256,
        # verified, random_init), the two text files beside it; verified only if all three are
        text = {MED_CONFIG_ASSET: med_record, VOCAB_ASSET: vocab_record}
        record["verified"] = bool(record["verified"]) and all(r["verified"] for r in text.values())
        self._weights = {**record, "text_files": text}

    def _score(self, images: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        import torch

        pix = torch.stack([blip.preprocess(im, self._size) for im in images]).to(self.device)
        tok = self._tokenizer(list(texts), padding="max_length", truncation=True,
                              max_length=blip.MAX_TOKENS, return_tensors="pt")
        with torch.inference_mode():
            rewards = self._model(pix, tok["input_ids"].to(self.device),
                                  tok["attention_mask"].to(self.device))
        return rewards.double().cpu().numpy()
