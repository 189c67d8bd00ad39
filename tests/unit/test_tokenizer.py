import open_clip
import pytest

from evalsuite.models.tokenizer import build_clip_tokenizer


@pytest.mark.parametrize("text", [
    "a photo of a cat",
    "An astronaut riding a horse, on the MOON!! 1234 café",
    "a " * 100,  # longer than the 77-token context: truncated the same way
])
def test_ids_equal_open_clip(text):
    tok = build_clip_tokenizer()
    ours = tok(text, padding="max_length", max_length=77, truncation=True).input_ids
    ref = open_clip.get_tokenizer("ViT-L-14")([text])[0].tolist()
    n = ref.index(49407) + 1  # open_clip pads with 0, SD's tokenizer with <|endoftext|>
    assert ours[:n] == ref[:n]
    assert len(tok.get_vocab()) == 49408
