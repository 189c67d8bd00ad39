"""Model presets: folders are matched to the preset's architecture; profiles need no weights."""

import pytest

from evalsuite.ablations import build_ablated_unet
from evalsuite.errors import EvalsuiteError
from evalsuite.models.arch import fit_unet_to_preset
from evalsuite.models.presets import SD15_UNET_CONFIG, build_preset_unet
from evalsuite.models.sources import ModelSource
from evalsuite.models.tiny import TINY_UNET_CONFIG
from evalsuite.profile import count_parameters
from evalsuite.profile.model import profile_unet, unet_architecture


def test_sd15_checkpoint_is_turned_into_the_preset_zero_shot():
    sd15 = build_ablated_unet(SD15_UNET_CONFIG, (), device="meta")  # stands in for loaded weights
    unet, how = fit_unet_to_preset(sd15, "bk_sdm_small")
    assert how == "derived_from_base" and count_parameters(unet) == 482_346_884


def test_a_checkpoint_of_the_preset_is_used_as_is():
    bk = build_preset_unet("bk_sdm_tiny")
    unet, how = fit_unet_to_preset(bk, "bk_sdm_tiny")
    assert how == "as_is" and unet is bk


def test_an_unrelated_unet_is_refused_with_the_difference():
    tiny = build_ablated_unet(TINY_UNET_CONFIG, (), device="meta")
    with pytest.raises(EvalsuiteError, match="neither the bk_sdm_base architecture nor its SD v1.5"):
        fit_unet_to_preset(tiny, "bk_sdm_base")


def test_presets_need_weights_for_runs_but_not_for_profiles():
    with pytest.raises(EvalsuiteError, match="evalsuite profile model=sd15"):
        ModelSource("sd15", arch="sd15")
    with pytest.raises(EvalsuiteError, match="not a known architecture"):
        ModelSource("x", arch="sd99", path=None)
    base, specs = unet_architecture("sd15", None)
    assert profile_unet(base, specs, sample_size=64)["unet_params"] == 859_520_964


def test_profile_counts_tiny_ablation_change():
    base, specs = unet_architecture("tiny", None)
    from evalsuite.ablations import FFNRatio

    plain = profile_unet(base, specs, sample_size=8)
    cut = profile_unet(base, [FFNRatio(ratio=6)], sample_size=8)
    assert cut["unet_params"] < plain["unet_params"] and cut["flops"] < plain["flops"]
    assert plain["flops"] == 2 * plain["macs"] and 0 < plain["attention_share"] < 1


def test_a_folder_of_another_architecture_is_refused_before_loading(compose, tmp_path, caplog):
    """model=bk_sdm_small model.path=<the shapes pipeline>: refused from unet/config.json alone,
    before a weight is read or a file written."""
    import logging
    from pathlib import Path

    import evalsuite
    from evalsuite.run import run

    folder = Path(evalsuite.__file__).parent / "worlds" / "shapes" / "sd_shapes"
    with pytest.raises(EvalsuiteError, match="neither the bk_sdm_small architecture"):
        ModelSource("bk_sdm_small", arch="bk_sdm_small", path=str(folder))
    with caplog.at_level(logging.INFO), pytest.raises(EvalsuiteError, match="neither the"):
        run(compose("model=bk_sdm_small", f"model.path={folder}", "model.resolution=64"))
    assert "loading pipeline" not in caplog.text
    assert not (tmp_path / "results").exists()
