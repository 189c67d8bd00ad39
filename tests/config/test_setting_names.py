"""One name per setting: the code reads ``paths.assets_dir``, ``metrics.verify_assets`` and
``metrics.bootstrap``; the ``score``/``assets`` subcommands' older names feed them."""

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import CONF_DIR
from evalsuite.config import register_configs


def _compose(name, overrides):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides)


def test_deprecated_aliases_feed_the_one_name():
    cfg = _compose("score", ["score.gen_dir=x", "assets.dir=/w", "assets.verify=false",
                             "score.bootstrap=7", "score.bootstrap_seed=3"])
    assert cfg.paths.assets_dir == "/w" and cfg.metrics.verify_assets is False
    assert cfg.metrics.bootstrap == 7 and cfg.metrics.bootstrap_seed == 3
    cfg = _compose("assets", ["assets.dir=/v", "assets.verify=false"])
    assert cfg.paths.assets_dir == "/v" and cfg.metrics.verify_assets is False


def test_the_one_name_works_everywhere():
    for name, extra in (("score", ["score.gen_dir=x"]), ("assets", []), ("config", [])):
        cfg = _compose(name, [*extra, "paths.assets_dir=/p", "metrics.verify_assets=false"])
        assert cfg.paths.assets_dir == "/p" and cfg.metrics.verify_assets is False, name


def test_a_deprecated_name_warns_and_names_the_current_one(caplog):
    from evalsuite.config.aliases import check_aliases

    with caplog.at_level("WARNING"):
        assert check_aliases(["assets.dir=/w", "metrics=full", "++score.bootstrap=3"]) == [
            "assets.dir", "score.bootstrap"]
    assert "use paths.assets_dir=" in caplog.text and "use metrics.bootstrap=" in caplog.text
    caplog.clear()
    assert check_aliases(["paths.assets_dir=/w", "metrics.verify_assets=false"]) == []
    assert caplog.text == ""


def test_both_names_of_one_setting_are_refused():
    import pytest

    from evalsuite.config.aliases import check_aliases
    from evalsuite.errors import ConfigError

    with pytest.raises(ConfigError, match="assets.verify and metrics.verify_assets"):
        check_aliases(["assets.verify=false", "metrics.verify_assets=true"])
