"""Reading a metric's ``weights`` field: every shape a metric records (one file, random
weights, one record per file, files nested beside a checkpoint) is verified only when every
file is, and identifies itself by every file."""

from evalsuite.metrics.weights import weight_records, weights_identity, weights_verified

FILE = {"file": "/a/ViT-L-14.pt", "sha256": "ab" * 32, "verified": True,
        "verification": "sha256"}
RANDOM = {"file": None, "random_init": True, "seed": 0, "verified": False}
STANDIN = {"file": "/a/head.pth", "sha256": "cd" * 32, "verified": False,
           "verification": "stand-in"}


def test_no_weights_and_one_verified_file_are_verified():
    assert weights_verified(None) and weights_verified(FILE)
    assert weights_identity(FILE) == "ab" * 32 and weights_identity(None) is None


def test_a_random_head_nested_beside_a_verified_backbone_is_not_verified():
    # the LAION aesthetic head's shape: one record per file, by asset name
    nested = {"open_clip_vit_l14_openai": FILE, "laion_aesthetic_v2_vit_l14": RANDOM}
    assert weight_records(nested) == [FILE, RANDOM]
    assert not weights_verified(nested)
    assert weights_identity(nested) == "ab" * 32 + "+random"
    assert weights_verified({"a": FILE, "b": FILE})


def test_files_nested_under_a_checkpoint_record_count_too():
    # ImageReward's shape: the checkpoint at the top, its text files under text_files
    record = {**FILE, "text_files": {"vocab": FILE, "med_config": STANDIN}}
    assert len(weight_records(record)) == 3 and not weights_verified(record)
    assert weights_identity(record) == "+".join(["ab" * 32, "ab" * 32, "cd" * 32])


def test_a_record_that_does_not_say_verified_is_not_verified():
    assert not weights_verified({"file": "/a/x.pt", "sha256": "ef" * 32})
    assert weights_identity({"file": None, "random_backbone": True}) == "random"
