"""Every option of every config group composes and instantiates; schema errors name the key."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from conftest import CONF_DIR
from evalsuite.config.build import build


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


def test_the_default_world_is_the_trained_shapes_world():
    """`evalsuite run` with no override evaluates the shapes world (conf/world/shapes.yaml)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    assert {g: choices[g] for g in ("world", "model", "dataset", "reference", "sampler",
                                    "metrics")} == {g: "shapes" for g in ("world", "model",
                                                    "dataset", "reference", "sampler", "metrics")}
    assert cfg.model.path.startswith("pkg://") and cfg.sampler.scheduler == "ddim"


def test_a_command_line_group_or_protocol_overrides_the_world(compose):
    cfg = compose("world=shapes", "model=tiny", "protocol=bk_sdm_coco30k")
    assert cfg.model.name == "tiny" and cfg.dataset.name.startswith("coco2014")
    assert cfg.sampler.steps == 25 and cfg.protocol.name == "bk_sdm_coco30k"


def test_tiny_world_composes_and_resolves(compose):
    cfg = compose()  # conftest: world=tiny
    assert cfg.model.name == "tiny" and cfg.dataset.name == "demo"
    assert dict(cfg.ablation) == {}
    assert cfg.reference.resolution == cfg.model.resolution  # interpolated
    OmegaConf.to_container(cfg, resolve=True)


def _dataset_files(tmp_path: Path) -> dict[str, list[str]]:
    """Per dataset option, the overrides pointing it at a small file the test writes."""
    from evalsuite.data import load_demo_prompts
    from evalsuite.data.formats import write_manifest
    from fixtures import write_coco

    (tmp_path / "p.txt").write_text("a cat\n")
    (tmp_path / "p.csv").write_text("prompt\na cat\n")
    (tmp_path / "p.jsonl").write_text('{"Prompt": "a cat", "Category": "Animals"}\n')
    write_manifest(load_demo_prompts(limit=3), tmp_path / "m.json")
    coco = tmp_path / "coco"
    write_coco(coco, n_images=12, year="2014"), write_coco(coco, n_images=12, year="2017")
    return {"text": [f"dataset.path={tmp_path}/p.txt"], "csv": [f"dataset.path={tmp_path}/p.csv"],
            "parti_prompts": [f"dataset.path={tmp_path}/p.jsonl"],
            "manifest": [f"dataset.path={tmp_path}/m.json"],
            "coco": [f"paths.coco_dir={coco}", "dataset.n=3"]}


@pytest.mark.parametrize("option", options("dataset"))
def test_every_dataset_option_instantiates(compose, option, tmp_path):
    files = _dataset_files(tmp_path)
    extra = files["coco"] if option.startswith("coco") else files.get(option, [])
    prompts = build(compose(f"dataset={option}", *extra).dataset, "dataset")
    assert len(prompts) >= 1 and prompts.name == option


@pytest.mark.parametrize("group", ["sampler", "metrics", "reference", "paths"])
def test_every_option_of_simple_groups_composes(compose, group):
    for option in options(group):
        cfg = compose(f"{group}={option}")
        assert OmegaConf.to_container(cfg[group], resolve=True)


@pytest.mark.parametrize("option", options("metrics"))
def test_every_metric_instantiates_without_loading_weights(compose, option):
    for name, c in compose(f"metrics={option}").metrics["items"].items():
        m = instantiate(c)
        assert m.name == name and m.version


def test_model_pretrained_requires_a_path(compose):
    from evalsuite.errors import EvalsuiteError

    with pytest.raises(EvalsuiteError, match=r"model\.path"):
        build(compose("model=pretrained").model, "model")


@pytest.mark.parametrize("override, key", [
    ("sampler.stepz=3", "stepz"),
    ("model.resoluton=64", "resoluton"),
    ("metrics.batchsize=3", "batchsize"),
    ("paths.result_dir=x", "result_dir"),
])
def test_unknown_key_fails_at_compose_time_naming_it(compose, override, key):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as e:
        compose(override)
    assert key in str(e.value) + str(e.value.__cause__)


@pytest.mark.parametrize("override, key", [
    ("sampler.steps=abc", "steps"),
    ("sampler.guidance_scale=high", "guidance_scale"),
    ("metrics.allow_random_weights=maybe", "allow_random_weights"),
])
def test_wrong_type_fails_at_compose_time_naming_it(compose, override, key):
    with pytest.raises((ConfigCompositionException, ValidationError)) as e:
        compose(override)
    assert key in str(e.value) + str(e.value.__cause__)


def test_ablation_list_composes_in_order(compose):
    names = options("ablation")
    if len(names) < 2:
        pytest.skip("fewer than two ablation options are defined")
    a, b = names[0], names[1]
    cfg = compose(f"ablation=[{b},{a}]")
    assert list(cfg.ablation.keys()) == [b, a]
    specs = [instantiate(c) for c in cfg.ablation.values()]
    assert [s.name for s in specs] == [b, a]
