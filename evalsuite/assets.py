"""Weight files that metrics need: declared once, looked up locally, never downloaded at run time.

Each asset has a canonical file name and, where it is known, a sha256 (or the 8-hex-digit
sha256 prefix that torch hub file names carry). Files are looked up first in the assets folder
(``paths.assets_dir``, or the ``EVALSUITE_ASSETS`` environment variable) and then in the cache
folders the upstream libraries use, so a machine that already ran torchvision or open_clip
finds its files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from evalsuite.errors import MissingAssetError
from evalsuite.io import cached_sha256


def _torch_hub_checkpoints() -> Path:
    torch_home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".cache", "torch"))
    return Path(torch_home) / "hub" / "checkpoints"


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str
    url: str
    sha256: str | None = None  # full digest, when known
    sha256_prefix: str | None = None  # torch hub convention: first 8 hex digits in the name
    fallbacks: tuple[str, ...] = field(default_factory=tuple)  # "torch_hub" etc.

    def candidates(self, assets_dir: str | os.PathLike) -> list[Path]:
        paths = [Path(os.environ.get("EVALSUITE_ASSETS", assets_dir)).expanduser() / self.filename]
        if "torch_hub" in self.fallbacks:
            paths.append(_torch_hub_checkpoints() / self.filename)
        return paths


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset("lpips_alexnet", "alexnet-owt-7be5be79.pth",
              "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
              sha256_prefix="7be5be79", fallbacks=("torch_hub",)),
        Asset("open_clip_vit_g14_laion2b_s34b_b88k", "open_clip_vit_g14_laion2b_s34b_b88k.bin",
              "https://huggingface.co/laion/CLIP-ViT-g-14-laion2B-s34B-b88K/resolve/main/"
              "open_clip_pytorch_model.bin"),
        Asset("open_clip_vit_l14_openai", "open_clip_vit_l14_openai.pt",
              "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb"
              "84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt", sha256_prefix="b8cca3fd"),
    ]
}


@dataclass(frozen=True)
class ResolvedAsset:
    path: Path
    sha256: str
    verified: bool  # True when the digest (or its prefix) matched the registry

    def to_record(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "verified": self.verified}


def open_clip_asset_name(model_name: str, pretrained: str) -> str:
    """Registry name of an open_clip checkpoint, e.g. ``open_clip_vit_g14_laion2b_s34b_b88k``."""
    model = model_name.lower().replace("-", "").replace("/", "")
    model = model.replace("vitg", "vit_g").replace("vitl", "vit_l").replace("vitb", "vit_b")
    return f"open_clip_{model}_{pretrained.lower()}"


def get(name: str) -> Asset:
    """The registry entry ``name``; open_clip checkpoints not listed get a generic entry."""
    if name in ASSETS:
        return ASSETS[name]
    if name.startswith("open_clip_"):
        return Asset(name, f"{name}.bin", "the open_clip pretrained tag's Hugging Face repository")
    raise KeyError(f"unknown asset {name!r}; known: {sorted(ASSETS)}")


def resolve(name: str, assets_dir: str | os.PathLike,
            digest_cache: str | os.PathLike | None = None) -> ResolvedAsset:
    """Find asset ``name`` on disk and check its digest; raise ``MissingAssetError`` if absent.

    ``digest_cache`` (a JSON file) remembers digests by path, size and mtime.
    """
    asset = get(name)
    candidates = asset.candidates(assets_dir)
    for path in candidates:
        if path.is_file():
            digest = cached_sha256(path, digest_cache)
            if asset.sha256 and digest != asset.sha256:
                raise MissingAssetError(f"{path} has sha256 {digest}, expected {asset.sha256}: "
                                        "the file is corrupt or a different release; replace it")
            if asset.sha256_prefix and not digest.startswith(asset.sha256_prefix):
                raise MissingAssetError(f"{path} has sha256 {digest[:8]}..., expected "
                                        f"{asset.sha256_prefix}...: the file is corrupt; replace it")
            return ResolvedAsset(path, digest, bool(asset.sha256 or asset.sha256_prefix))
    looked = ", ".join(str(p) for p in candidates)
    raise MissingAssetError(f"weight file {asset.filename} ({name}) is missing; looked in {looked}. "
                            f"Download it from {asset.url} on a machine with internet and put it "
                            f"in the assets folder (paths.assets_dir or $EVALSUITE_ASSETS).")
