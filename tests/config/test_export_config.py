"""The ``export`` group (conf/export/default.yaml): off by default in every config that runs
the pipeline, typed, not hashed, no protocol departure; ``evalsuite export``'s config
composes."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from conftest import CONF_DIR
from evalsuite.protocols import modifications
from evalsuite.tasks.setup import config_hash

ON = ["export.wandb.enabled=true", "export.wandb.mode=offline", "export.wandb.dir=/tmp/wb",
      "export.mlflow.enabled=true", "export.mlflow.tracking_uri=file:/tmp/mlruns",
      "export.on_error=fail", "export.preview=0"]


def _compose(name: str, *overrides: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from evalsuite.config import register_configs
    from evalsuite.config.export_command import register_export_command

    register_configs(), register_export_command()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides=list(overrides))


def test_export_is_off_by_default_in_run_and_score(compose):
    for cfg in (compose(), _compose("score", "score.gen_dir=x")):
        assert cfg.export.wandb.enabled is False and cfg.export.mlflow.enabled is False
        assert cfg.export.wandb.mode == "offline" and cfg.export.on_error == "warn"
        assert cfg.export.mlflow.tracking_uri is None and cfg.export.preview == 8


def test_export_settings_compose_and_change_neither_hash_nor_protocol(compose):
    on = compose(*ON)
    assert on.export.wandb.enabled and on.export.mlflow.tracking_uri == "file:/tmp/mlruns"
    assert config_hash(on) == config_hash(compose())
    off = _compose("config", "world=tiny", "protocol=bk_sdm_coco30k", "model=sd15")
    assert modifications(off, ["protocol=bk_sdm_coco30k", "model=sd15", *ON]) == []


@pytest.mark.parametrize("override, key", [
    ("export.wandb.enabld=true", "enabld"),
    ("export.mlflow.uri=file:x", "uri"),
    ("export.wandb.enabled=maybe", "enabled"),
    ("export.preview=many", "preview"),
])
def test_a_misspelt_or_mistyped_export_setting_fails_at_compose_time(compose, override, key):
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ValidationError)) as e:
        compose(override)
    assert key in str(e.value) + str(e.value.__cause__)


def test_the_export_command_config_composes():
    cfg = _compose("export", "export.mlflow.enabled=true", "run_ids=[abc]",
                   "+where.sampler.steps=25")
    assert cfg.export.mlflow.enabled and list(cfg.run_ids) == ["abc"]
    assert cfg.where.sampler.steps == 25 and cfg.paths.results_dir
