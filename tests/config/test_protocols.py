"""Protocol presets (conf/protocol/): they compose, hash what changes numbers and nothing else,
flag departures from the published settings, and the README's table is generated from them."""

import re

import pytest
from omegaconf import OmegaConf

from conftest import ROOT
from fixtures import write_coco
from evalsuite.data.coco_reference import CocoReference
from evalsuite.data.prompts import Prompt, PromptSet
from evalsuite.errors import EvalsuiteError
from evalsuite.protocol_table import BEGIN, END, compose_preset, markdown_table, preset_names
from evalsuite.protocols import modifications, protocol_fields, protocol_record

PRESETS = preset_names()
PUBLISHED = ["bk_sdm_coco30k", "snapfusion_coco2k_search", "snapfusion_coco6k_cfg_sweep",
             "coco2017_5k", "coco2014_30k_clean"]


def prompts(*texts: str) -> PromptSet:
    return PromptSet("p", tuple(Prompt(str(i), t) for i, t in enumerate(texts)), "test")


def test_the_published_presets_exist_and_custom_is_the_default():
    assert set(PUBLISHED) <= set(PRESETS)
    default = compose_preset("custom")
    assert default.protocol.name == "custom" and not default.protocol.preset


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_composes_states_its_source_and_names_real_fields(name):
    cfg = compose_preset(name, overrides=("model.resolution=512",))
    p = cfg.protocol
    assert p.name == name and p.version >= 1 and p.source
    text = (ROOT / "conf" / "protocol" / f"{name}.yaml").read_text()
    assert text.lstrip().startswith("#")  # a comment saying where the settings come from
    fields = protocol_fields(cfg, prompts("a cat"), None)  # raises on a path that is not there
    assert set(fields) == {"task", *p.fields} - set(p.varies)
    assert modifications(cfg, [f"protocol={name}", "model.resolution=512"]) == []


def test_bk_sdm_preset_has_the_published_settings():
    cfg = compose_preset("bk_sdm_coco30k", overrides=("model.resolution=512",))
    assert (cfg.dataset.n, cfg.dataset.annotations.endswith("captions_val2014.json")) == (30000, True)
    s = cfg.sampler
    assert (s.scheduler, s.steps, s.guidance_scale, s.seed, s.dtype) == ("pndm", 25, 7.5, 1234,
                                                                        "float16")
    fid = cfg.metrics["items"]["fid_legacy"]
    assert (fid.resize, fid.size, fid.dims) == ("squash", 256, 2048)
    assert cfg.metrics["items"]["clip_score"].model_name == "ViT-g-14"
    assert (cfg.reference.subset, cfg.reference.resize, cfg.reference.resolution) == ("split",
                                                                                    "squash", 256)
    assert modifications(cfg, ["protocol=bk_sdm_coco30k", "model.resolution=512"]) == []


def test_machine_paths_and_runtime_settings_do_not_change_the_protocol():
    a = compose_preset("coco2014_30k_clean", overrides=("paths.coco_dir=/data/a",))
    b = compose_preset("coco2014_30k_clean", overrides=("paths.coco_dir=/mnt/b", "device=cuda:1",
                                                        "metrics.batch_size=64"))
    ps = prompts("a cat", "a dog")
    assert protocol_record(a, ps, None)["hash"] == protocol_record(b, ps, None)["hash"]
    assert "annotations" not in str(protocol_fields(a, ps, None))


def test_the_same_coco_images_in_two_folders_give_the_same_protocol(tmp_path):
    """The reference enters the protocol by content (every file's sha256), not by location."""
    cfg = compose_preset("coco2017_5k")
    ps = prompts("a cat")
    hashes, refs = [], []
    for where in ("a", "b"):
        ann = write_coco(tmp_path / where, n_images=4, year="2017")
        ref = CocoReference("coco2017_val", str(ann), str(ann.parents[1] / "val2017"),
                            resize="center_crop", resolution=32)
        refs.append(ref)
        hashes.append(protocol_record(cfg, ps, ref)["hash"])
    assert hashes[0] == hashes[1]
    assert str(tmp_path) not in str(protocol_fields(cfg, ps, refs[0]))
    squashed = CocoReference("coco2017_val", str(tmp_path / "a/annotations/captions_val2017.json"),
                             str(tmp_path / "a/val2017"), resize="squash", resolution=32)
    assert protocol_record(cfg, ps, squashed)["hash"] != hashes[0]


def test_the_prompt_set_and_metric_settings_change_the_hash():
    cfg = compose_preset("coco2014_30k_clean")
    base = protocol_record(cfg, prompts("a cat", "a dog"), None)["hash"]
    assert protocol_record(cfg, prompts("a cat", "a cow"), None)["hash"] != base
    other = compose_preset("coco2014_30k_clean", overrides=("+metrics.items.fid_clean.resize=squash",
                                                            "+metrics.items.fid_clean.size=256"))
    assert protocol_record(other, prompts("a cat", "a dog"), None)["hash"] != base


def test_a_sweep_protocol_leaves_the_swept_scale_out_and_a_fixed_one_does_not():
    ps = prompts("a cat")
    sweep = [protocol_record(compose_preset("snapfusion_coco6k_cfg_sweep",
                                            overrides=(f"sampler.guidance_scale={g}",)), ps, None)
             for g in (1.0, 7.5)]
    assert sweep[0]["hash"] == sweep[1]["hash"]
    assert "sampler.guidance_scale" not in sweep[0]["fields"]
    fixed = [protocol_record(compose_preset("snapfusion_coco2k_search",
                                            overrides=(f"sampler.guidance_scale={g}",)), ps, None)
             for g in (1.0, 7.5)]
    assert fixed[0]["hash"] != fixed[1]["hash"]


def mods(preset: str, *overrides: str) -> list[str]:
    """``modifications`` of a run composed as ``evalsuite run protocol=<preset> <overrides>``."""
    cfg = compose_preset(preset, overrides=overrides)
    return modifications(cfg, [f"protocol={preset}", *overrides])


def test_departures_from_a_preset_are_found_by_value():
    # batch size and paths do not change numbers; the model here is the tiny one (64 px)
    assert mods("bk_sdm_coco30k", "dataset.n=4", "sampler.batch_size=2", "sampler.steps=50",
                "paths.coco_dir=/x") == ["dataset.n=4 (protocol: 30000)",
                                         "sampler.steps=50 (protocol: 25)",
                                         "model.resolution=64 (protocol: 512)"]
    flagged = {"reference.resize=center_crop": "reference.resize=center_crop (protocol: squash)",
               "reference=coco2014_val": "reference.name=coco2014_val",
               "dataset=coco2014_2k": "dataset.n=2000 (protocol: 30000)",
               "metrics.items.fid_legacy.resize=center_crop": "metrics.items.fid_legacy.resize",
               "~metrics.items.clip_score": "metrics.items.clip_score=absent (protocol: {...})",
               "sampler=default": "sampler.steps=10 (protocol: 25)",
               "task=reconstruction": "task=reconstruction (protocol: generate)",
               "dataset.annotations=/x/captions_val2017.json": "captions_val2017.json",
               "protocol.fields=[dataset]": "protocol.fields",
               # statistics imported instead of computed from the preset's images
               "+reference.stats.fid_legacy=/data/s.npz": "reference.stats.fid_legacy=/data/s.npz"}
    for override, expected in flagged.items():
        found = mods("bk_sdm_coco30k", "model=sd15", override)
        assert any(m.startswith(expected) or expected in m for m in found), (override, found)


def test_choosing_what_the_preset_chooses_the_model_locations_and_devices_is_no_departure():
    harmless = ["model=sd15", "model.path=/models/sd15", "reference.images_dir=/data/val2014",
                "dataset.annotations=/data/coco/annotations/captions_val2014.json",
                "metrics.items.fid_legacy.device=cuda:1", "device=cuda",
                "sampler.batch_size=16",
                "sampler=sd_pndm25", "metrics=bk_sdm", "reference=coco2014_val_squash256"]
    assert mods("bk_sdm_coco30k", *harmless) == []
    assert mods("snapfusion_coco6k_cfg_sweep", "model.resolution=512",
                "sampler.guidance_scale=3.0") == []  # swept by design
    assert mods("custom", "dataset.limit=2") == []  # nothing published to depart from


def test_a_study_prompt_limit_set_in_code_is_a_departure_without_any_override():
    cfg = compose_preset("snapfusion_coco2k_search", overrides=("model.resolution=512",))
    cfg.dataset.limit = 64  # what evalsuite study does to the run config
    assert modifications(cfg, ["model.resolution=512"]) == ["dataset.limit=64 (protocol: None)"]


def test_a_field_that_is_not_a_config_path_is_a_clear_error():
    cfg = compose_preset("custom")
    OmegaConf.update(cfg, "protocol.fields", ["dataset", "sampler.stepz"], force_add=True)
    with pytest.raises(EvalsuiteError, match="sampler.stepz"):
        protocol_fields(cfg, prompts("a"), None)


def test_readme_protocols_table_is_generated_from_the_presets():
    readme = (ROOT / "README.md").read_text()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), readme, re.S)
    assert m, "README.md has no protocols table between the markers"
    assert m.group(1).strip() == markdown_table().strip(), \
        "README protocols table is stale: run `python -m evalsuite.protocol_table`"


def test_the_cfg_sweep_protocol_sweeps_1_to_10_5_in_steps_of_half():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from conftest import CONF_DIR

    compose_preset("custom")  # registers the schemas
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["world=tiny", "protocol=snapfusion_coco6k_cfg_sweep"],
                      return_hydra_config=True)
    (param, values), = cfg.hydra.sweeper.params.items()
    sweep = OverridesParser.create().parse_overrides([f"{param}={values}"])[0]
    scales = [float(v) for v in sweep.sweep_string_iterator()]
    assert param == "sampler.guidance_scale" and param in cfg.protocol.varies
    assert scales == [1.0 + 0.5 * i for i in range(20)]  # 1.0 ... 10.5 (SnapFusion Sec. 5)
