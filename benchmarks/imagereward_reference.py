"""Writes tests/data/imagereward_reference.npz: the ImageReward package's own outputs on a tiny,
seeded stand-in model, for the parity test of ``evalsuite.metrics.imagereward``.

The reference is the unmodified code of the ``image-reward`` 1.5 wheel (ImageReward.py and
models/BLIP/{vit,med,blip,blip_pretrain}.py). Its pins do not install beside evalsuite, so it
runs in a throwaway environment; exactly how this file was produced:

    python3 -m venv /tmp/irvenv
    /tmp/irvenv/bin/pip install --no-deps timm==0.6.13 fairscale==0.4.13 \
        transformers==4.46.3 "tokenizers>=0.20,<0.21" huggingface-hub==0.26.5
    pip download --no-deps image-reward==1.5  # then unzip the wheel to /tmp/dl/ir
    PYTHONPATH=/tmp/irvenv/lib/python3.11/site-packages:/tmp/dl/ir \
        /work/main/.venv/bin/python benchmarks/imagereward_reference.py

(torch 2.14.1 and torchvision 0.29.1 from evalsuite's environment.) Only sizes are changed, by
patching the three places where ``ImageReward.__init__`` hard-codes them: ``create_vit`` (a
VisionTransformer of width 16, depth 2, 2 heads, 8-pixel patches at 32 px, with the package's
class), ``_transform(224)`` -> ``_transform(32)``, and ``MLP`` (the same Sequential pattern,
Linear/Dropout alternating with no activation, with widths 32-16-8-4 instead of 1024-128-64-16).
``init_tokenizer`` is the package's three lines on a local 60-word vocab (no download). Before
the patches, the real-size model is built (about a minute) and its tensor names and shapes
are saved (``full_shapes``), so that ``ImageReward.pt``'s layout is checked too. Every
parameter is then overwritten with seeded normal values (so every weight matters), and the
package's public ``ImageReward.score(prompt, PIL image)`` is called once per pair.
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

IR_ROOT = Path("/tmp/dl/ir/ImageReward")
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "imagereward_reference.npz"
WORDS = ("a an the of on in with and photo painting cat dog red blue green small big two "
         "cube ball sky tree house under over sunset city night portrait woman man car "
         "##s ##ing ##ed flower field river mountain style oil cafe naive 猫 , . ! ' - :").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
TINY = {"img": 32, "patch": 8, "vision_width": 16, "vision_depth": 2, "vision_heads": 2,
        "mlp": (32, 16, 8, 4)}
MED_CONFIG = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 16,
              "initializer_range": 0.02, "intermediate_size": 32, "layer_norm_eps": 1e-12,
              "max_position_embeddings": 40, "model_type": "bert", "num_attention_heads": 2,
              "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
              "vocab_size": len(VOCAB) + 2, "encoder_width": 16, "add_cross_attention": True}
# BLIP's configs/med_config.json (THUDM/ImageReward's med_config.json) where it differs from
# the tiny one
FULL_TEXT = {"hidden_size": 768, "intermediate_size": 3072, "max_position_embeddings": 512,
             "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 30524,
             "encoder_width": 768}
PROMPTS = ["a red cube on a blue ball", "A Photo of Two Cats under the SKY at sunset!",
           "portrait of a woman, oil painting style",
           "zebra xylophone quokka: Café 猫 naïve",  # [UNK]s; accents stripped; CJK split
           "a big red house in a green field with a river and two trees under the night sky "
           "over the city and a small dog with a blue ball in a car on the mountain"]  # > 35
SHAPES = [(32, 32), (40, 52), (45, 37), (64, 48), (33, 33)]


def _import_reference() -> types.ModuleType:
    """The package's ImageReward module, without its ``__init__`` (which imports CLIP, diffusers
    and the ReFL trainer)."""
    for name, sub in (("ImageReward", IR_ROOT), ("ImageReward.models", IR_ROOT / "models")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(sub)]
        sys.modules[name] = pkg
    import ImageReward.ImageReward as R  # noqa: N812

    return R


def _patch_tokenizer(vocab_dir: str) -> None:
    from ImageReward.models.BLIP import blip_pretrain
    from transformers import BertTokenizer

    def init_tokenizer():  # blip.init_tokenizer, from a local folder
        tokenizer = BertTokenizer.from_pretrained(vocab_dir)
        tokenizer.add_special_tokens({'bos_token': '[DEC]'})
        tokenizer.add_special_tokens({'additional_special_tokens': ['[ENC]']})
        tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
        return tokenizer

    blip_pretrain.init_tokenizer = init_tokenizer


def _full_size_shapes(R: types.ModuleType, tmp: str) -> str:
    """Every tensor name and shape of the real-size model (BLIP's med_config.json values), as
    JSON: the test checks that ImageReward.pt's layout loads. (Built on the CPU: vit.py calls
    ``.item()``, which the meta device refuses.)"""
    path = Path(tmp, "full_med_config.json")
    path.write_text(json.dumps({**MED_CONFIG, **FULL_TEXT}))
    model = R.ImageReward(med_config=str(path))
    return json.dumps({k: list(v.shape) for k, v in model.state_dict().items()})


def _patch_sizes(R: types.ModuleType) -> None:
    from ImageReward.models.BLIP import blip_pretrain
    from ImageReward.models.BLIP.vit import VisionTransformer

    def create_vit(vit, image_size, *args):
        return VisionTransformer(img_size=TINY["img"], patch_size=TINY["patch"],
                                 embed_dim=TINY["vision_width"], depth=TINY["vision_depth"],
                                 num_heads=TINY["vision_heads"]), TINY["vision_width"]

    class TinyMLP(R.MLP):
        def __init__(self, input_size):  # ImageReward passes 768, BERT-base's width
            input_size = MED_CONFIG["hidden_size"]
            super().__init__(input_size)
            w = TINY["mlp"]
            self.layers = nn.Sequential(nn.Linear(input_size, w[0]), nn.Dropout(0.2),
                                        nn.Linear(w[0], w[1]), nn.Dropout(0.2),
                                        nn.Linear(w[1], w[2]), nn.Dropout(0.1),
                                        nn.Linear(w[2], w[3]), nn.Linear(w[3], 1))

    blip_pretrain.create_vit = create_vit
    original = R._transform
    R._transform = lambda n_px: original(TINY["img"])
    R.MLP = TinyMLP


def _randomise(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            is_norm = "norm" in name.lower() and name.endswith("weight")
            p.copy_(1 + 0.1 * noise if is_norm else 0.3 * noise)


def _images(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    out = []
    for h, w in SHAPES:  # smooth gradients plus noise, so that resizing matters
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
        out.append(np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


def main() -> None:
    R = _import_reference()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.txt").write_text("\n".join(VOCAB) + "\n")
        Path(tmp, "med_config.json").write_text(json.dumps(MED_CONFIG))
        _patch_tokenizer(tmp)
        full_shapes = _full_size_shapes(R, tmp)
        _patch_sizes(R)
        model = R.ImageReward(med_config=str(Path(tmp, "med_config.json"))).eval()
        _randomise(model)
        images = _images()
        tok = model.blip.tokenizer(PROMPTS, padding="max_length", truncation=True, max_length=35)
        features: list[torch.Tensor] = []  # the MLP's input: text token 0 after cross-attention
        model.mlp.register_forward_hook(lambda mod, args, out: features.append(args[0][0]))
        with torch.no_grad():
            rewards = [model.score(p, Image.fromarray(im)) for p, im in zip(PROMPTS, images)]
            pixels = torch.stack([model.preprocess(Image.fromarray(im)) for im in images])
    state = {f"state/{k}": v.numpy() for k, v in model.state_dict().items()}
    arrays = {f"image/{i}": im for i, im in enumerate(images)}
    np.savez_compressed(OUT, **state, **arrays, rewards=np.asarray(rewards, np.float64),
                        features=torch.stack(features).numpy(),
                        pixels=pixels.numpy(), input_ids=np.asarray(tok["input_ids"]),
                        attention_mask=np.asarray(tok["attention_mask"]),
                        prompts=np.asarray(PROMPTS), vocab=np.asarray(VOCAB),
                        med_config=np.asarray(json.dumps(MED_CONFIG)),
                        tiny=np.asarray(json.dumps(TINY)), full_shapes=np.asarray(full_shapes))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); rewards {np.round(rewards, 4)}")


if __name__ == "__main__":
    main()
