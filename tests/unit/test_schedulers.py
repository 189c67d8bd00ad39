from types import SimpleNamespace

import pytest

from evalsuite.errors import ConfigError
from evalsuite.models.schedulers import SCHEDULERS, build_scheduler, check_sampler
from evalsuite.models.tiny import SD_SCHEDULER_CONFIG


def _sampler(**kw):
    base = dict(scheduler="pndm", steps=2, guidance_scale=7.5, negative_prompt=None,
                prediction_type=None, seed=0, batch_size=1, dtype="float32")
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_keeps_the_model_noise_schedule(name):
    s = build_scheduler(name, SD_SCHEDULER_CONFIG)
    assert type(s).__name__ == SCHEDULERS[name][0]
    assert s.config.beta_schedule == "scaled_linear" and s.config.beta_end == 0.012
    assert s.config.prediction_type == "epsilon"
    assert build_scheduler(name, SD_SCHEDULER_CONFIG, "v_prediction").config.prediction_type == "v_prediction"


@pytest.mark.parametrize("bad, key", [
    (dict(scheduler="nope"), "sampler.scheduler"), (dict(dtype="float8"), "sampler.dtype"),
    (dict(steps=0), "sampler.steps"), (dict(batch_size=0), "sampler.batch_size"),
    (dict(prediction_type="x0"), "sampler.prediction_type"),
    (dict(guidance_scale=-1.0), "sampler.guidance_scale"),
])
def test_bad_sampler_settings_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_sampler(_sampler(**bad))
    check_sampler(_sampler())
