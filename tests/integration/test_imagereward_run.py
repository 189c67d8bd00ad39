"""ImageReward through the config: `metrics=imagereward` runs only with its files or with
random weights allowed explicitly, and the record says which files were stand-ins."""

import math

from conftest import FAST
from evalsuite.run import run

TINY = ["metrics=imagereward", "metrics.items.imagereward.arch=tiny"]


def test_missing_files_skip_imagereward_with_the_file_named(compose):
    rec = run(compose(*FAST, *TINY))
    assert "imagereward" not in rec["metrics"]
    assert "ImageReward.pt" in rec["skipped_metrics"]["imagereward"]


def test_random_weights_are_explicit_and_recorded(compose):
    rec = run(compose(*FAST, *TINY, "metrics.allow_random_weights=true"))
    assert rec["allow_random_weights"] is True
    m = rec["metrics"]["imagereward"]
    assert m["weights"]["random_init"] is True and m["weights"]["verified"] is False
    assert m["weights"]["text_files"]["bert_base_uncased_vocab"]["file"] is None
    assert m["n"] == 6 and math.isfinite(m["value"])
    assert "[CLS] kept" in m["settings"]["tokenizer"]
