"""ComponentCache: one load per (model, dtype, device); every borrower gets its own UNet."""

from evalsuite.models.lazy import ComponentCache


class FakeSource:
    def __init__(self, name: str) -> None:
        self.name, self.loads = name, 0

    def identity(self) -> dict:
        return {"name": self.name}

    def load(self) -> dict:
        self.loads += 1
        return {"unet": {"weights": [1.0]}, "vae": object()}


def test_one_load_per_model_dtype_and_device_with_a_private_unet():
    cache, src = ComponentCache(), FakeSource("m")
    a = cache.borrow(src, "float32", "cpu")
    b = cache.borrow(src, "float32", "cpu")
    assert src.loads == 1 and a["vae"] is b["vae"]
    a["unet"]["weights"][0] = 0.0  # surgery on one borrower's UNet ...
    assert b["unet"]["weights"] == [1.0]  # ... never reaches another's
    cache.borrow(src, "float16", "cpu")  # the pipeline converts shared modules in place
    cache.borrow(src, "float32", "cuda")
    cache.borrow(FakeSource("other"), "float32", "cpu")
    assert cache.loads == 4 and src.loads == 3
