"""The generator's NaN check per denoising step (``FiniteLatents``): counted on the latents'
device, read once at the end of a chunk on a GPU and at each step on a CPU, naming the first
bad step as ``require_finite`` would."""

import pytest
import torch

from evalsuite.models.generator import FiniteLatents
from evalsuite.numerics import NonFiniteError, require_finite


def _steps(check, bad_steps, n=6):
    """Feed ``n`` steps of latents; the steps in ``bad_steps`` hold NaN/Inf."""
    for step in range(n):
        lat = torch.zeros(2, 4, 8, 8)
        if step in bad_steps:
            lat[0, 0, :2, 0] = float("nan")
            lat[1, 3, 0, 0] = float("inf") if step == min(bad_steps) else 0.0
        assert check(None, step, 999 - step, {"latents": lat})["latents"] is lat


@pytest.mark.parametrize("each_step", [False, True])
def test_the_first_bad_step_is_named_with_require_finites_message(each_step):
    lat = torch.zeros(2, 4, 8, 8)
    lat[0, 0, :2, 0], lat[1, 3, 0, 0] = float("nan"), float("inf")
    with pytest.raises(NonFiniteError) as expected:
        require_finite(lat, "UNet (latents after denoising step 4)")
    check = FiniteLatents(read_each_step=each_step)
    with pytest.raises(NonFiniteError) as err:
        _steps(check, {3, 4})  # deferred: steps 4..6 run, the error names step 4 (index 3)
        check.check()
    assert str(err.value) == str(expected.value)
    assert "(2 NaN, 1 infinite of 512)" in str(err.value)


def test_finite_latents_pass_and_nothing_fed_passes():
    check = FiniteLatents(read_each_step=False)
    check.check()
    _steps(check, set())
    check.check()


def test_deferred_check_reads_the_device_only_when_asked():
    """Without ``read_each_step`` no step raises (no host read); ``check`` does."""
    check = FiniteLatents(read_each_step=False)
    _steps(check, {0})
    with pytest.raises(NonFiniteError, match=r"denoising step 1\)"):
        check.check()
