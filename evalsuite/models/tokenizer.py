"""A CLIP tokenizer for transformers, built offline from the BPE vocabulary open_clip ships.

Stable Diffusion's tokenizer is OpenAI CLIP's: a byte-level BPE with 49,408 entries. open_clip
carries the same merges list (``bpe_simple_vocab_16e6.txt.gz``) inside its wheel, so the
tokenizer can be rebuilt without a download: vocab = the 256 byte symbols, the same with the
end-of-word marker, one entry per merge, then the two special tokens.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

# 49408 (CLIP's vocabulary) - 2 * 256 byte symbols - 2 special tokens.
N_MERGES = 48894


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def bpe_path() -> Path:
    """The BPE merges file bundled with open_clip (found without importing open_clip, which
    would pull in timm and take seconds)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("open_clip_torch is not installed; it ships the CLIP BPE vocabulary")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


@lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    with gzip.open(bpe_path(), "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1 : N_MERGES + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def build_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """Build SD's CLIP tokenizer from open_clip's bundled vocabulary (no network, no cache)."""
    vocab, merges = _vocab_and_merges()
    # transformers >= 5 builds the tokenizers-backed BPE straight from in-memory vocab/merges.
    return CLIPTokenizer(vocab=dict(vocab), merges=[tuple(m.split()) for m in merges],
                         model_max_length=model_max_length)
