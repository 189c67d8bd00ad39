"""Weight files that metrics need: declared once, looked up locally, fetched only on request.

Each asset has a canonical file name, an upstream URL and, where it can be checked, a sha256:
the full digest when one is published (OpenAI's CLIP URLs name the file's sha256, which their
loader verifies), or the first 8 hex digits that torch hub file names carry
(``alexnet-owt-7be5be79.pth``, ``pt_inception-2015-12-05-6726825d.pth``; torch hub checks
downloads against exactly this prefix). Where no digest is published (clean-fid's TorchScript
Inception, Hugging Face checkpoints) none is invented: the file's sha256 is recorded and the
record says it could not be verified.

Lookup order: the assets folder (``paths.assets_dir``, default
``$EVALSUITE_ASSETS`` or ``./assets``), then the caches the upstream libraries use (torch hub,
clean-fid's ``/tmp``, open_clip's ``~/.cache/clip``, the Hugging Face hub cache), so a machine
that already ran those libraries finds its files. Nothing is downloaded unless ``fetch`` is
called (``evalsuite assets assets.fetch=true``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from evalsuite.errors import MissingAssetError
from evalsuite.io import cached_sha256

FETCH_HINT = "evalsuite assets assets.fetch=true assets.names=[{name}]"


class CorruptAssetError(MissingAssetError):
    """A weight file exists but its sha256 is not the published one."""


def default_assets_dir() -> Path:
    """``$EVALSUITE_ASSETS`` or ``./assets``."""
    return Path(os.environ.get("EVALSUITE_ASSETS", "assets")).expanduser()


def _upstream_dir(kind: str) -> list[Path]:
    home = Path.home()
    if kind == "torch_hub":
        torch_home = os.environ.get("TORCH_HOME", str(home / ".cache" / "torch"))
        return [Path(torch_home) / "hub" / "checkpoints"]
    if kind == "package":  # weights shipped inside evalsuite (the shapes world's evaluators)
        return [Path(__file__).parent / "worlds" / "shapes" / "weights"]
    if kind == "shapes_pipeline":  # the trained shapes pipeline's folder, shipped in the package
        return [Path(__file__).parent / "worlds" / "shapes" / "sd_shapes"]
    if kind == "tmp":  # clean-fid downloads to a hard-coded /tmp on Linux
        return [Path("/tmp")]
    if kind == "clip_cache":  # open_clip's download_pretrained_from_url default
        return [home / ".cache" / "clip"]
    if kind.startswith("hf:"):  # hf:<org>/<repo>: every snapshot of that repo
        hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get(
            "HF_HOME", str(home / ".cache" / "huggingface"))) / "hub")
        repo = hub / ("models--" + kind[3:].replace("/", "--")) / "snapshots"
        return sorted(repo.glob("*")) if repo.is_dir() else [repo / "<revision>"]
    raise ValueError(f"unknown upstream cache {kind!r}")


@dataclass(frozen=True)
class Asset:
    """One weight file: canonical name, where it comes from, and how to check it."""

    name: str
    filename: str
    url: str
    sha256: str | None = None  # full digest, when published
    sha256_prefix: str | None = None  # torch hub convention: first 8 hex digits in the name
    fallbacks: tuple[str, ...] = field(default_factory=tuple)  # "kind" or "kind=filename"
    description: str = ""

    def expected(self) -> str:
        """The expected digest in words, for messages."""
        if self.sha256:
            return self.sha256
        if self.sha256_prefix:
            return f"{self.sha256_prefix}... (prefix from the file name, torch hub convention)"
        return "none published (any file is accepted; its sha256 is recorded as unverified)"

    def candidates(self, assets_dir: str | os.PathLike | None) -> list[Path]:
        """Where the file is looked for, in order."""
        folder = Path(assets_dir).expanduser() if assets_dir else default_assets_dir()
        paths = [folder / self.filename]
        for fb in self.fallbacks:
            kind, _, fname = fb.partition("=")
            paths += [d / (fname or self.filename) for d in _upstream_dir(kind)]
        return paths

    def check_digest(self, digest: str) -> bool | None:
        """True/False if a digest is known and (mis)matches; None if none is known."""
        if self.sha256:
            return digest == self.sha256
        if self.sha256_prefix:
            return digest.startswith(self.sha256_prefix)
        return None


_OPENAI = "https://openaipublic.azureedge.net/clip/models"
_HF = "https://huggingface.co"


def _openai_clip(name: str, upstream_file: str, sha256: str, description: str) -> Asset:
    """An OpenAI CLIP checkpoint: its URL names the file's sha256 (which OpenAI's loader
    checks), and open_clip caches it in ``~/.cache/clip`` under the upstream file name."""
    return Asset(name, f"{name}.pt", f"{_OPENAI}/{sha256}/{upstream_file}", sha256=sha256,
                 fallbacks=(f"clip_cache={upstream_file}",), description=description)


# sha256 of the shipped files: train_log.json next to them (python -m
# evalsuite.worlds.shapes.train_evaluators writes both).
_SHAPES_SHA256 = {
    "shapes_checker": "f89413dabc1a62b9ff11aed2a0489ca79a01067dc3219f4b877a44610fb3d4c4",
    "shapes_image_encoder": "b95541c914c8a7d474459c30436a64174d860b8c6d032d2f136820eeae4ea63d",
    "shapes_text_encoder": "2a8b796191ab47fa0783d2fa131ff82513c612d59e0e5a6a9da1862b4e0fecbe",
}


def _shapes_evaluators() -> list[Asset]:
    """The shapes world's evaluator networks, shipped in the package (no download)."""
    what = {"shapes_checker": "attribute checker; shapes_attr_acc",
            "shapes_image_encoder": "image encoder; fd_shapes, kid_shapes, shapes_clip_score",
            "shapes_text_encoder": "text encoder; shapes_clip_score"}
    return [Asset(name, f"{name}.safetensors",
                  "shipped inside the evalsuite package (evalsuite/worlds/shapes/weights/); "
                  "rebuild with python -m evalsuite.worlds.shapes.train_evaluators",
                  sha256=digest, fallbacks=("package",),
                  description=f"shapes world {what[name]}")
            for name, digest in _SHAPES_SHA256.items()]


# sha256 of the shipped shapes pipeline's weight files (its train_log.json lists them too;
# python -m evalsuite.worlds.shapes.train_pipeline writes both).
#: Weight files of the shipped pipeline, relative to its folder (one place for this fact: the
#: pipeline module reads it from here).
SHAPES_PIPELINE_FILES: dict[str, str] = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
}
_SHAPES_PIPELINE_SHA256 = {
    "unet": "19f47b090bf86cfcdcd0ed804697f6203e25cc213440f17d52ad43d045587884",
    "vae": "8308b331ba9871bca40e6ce62aecdc44c7fc656df9885ffeda417b7b521c8968",
    "text_encoder": "cee4bf20b6061ddc01b80b066a41288d624eb188d37886aea57ee1cdb4f850ab",
}


def _shapes_pipeline() -> list[Asset]:
    """The trained shapes pipeline's weights (model=shapes), shipped in the package."""
    return [Asset(f"shapes_pipeline_{c}", f"shapes_pipeline_{c}.safetensors",
                  "shipped inside the evalsuite package (evalsuite/worlds/shapes/sd_shapes/); "
                  "rebuild with python -m evalsuite.worlds.shapes.train_pipeline",
                  sha256=digest, fallbacks=(f"shapes_pipeline={SHAPES_PIPELINE_FILES[c]}",),
                  description=f"shapes world trained pipeline, {c}; model=shapes")
            for c, digest in _SHAPES_PIPELINE_SHA256.items()]


def _dinov2() -> list[Asset]:
    """DINOv2 backbones as torch hub downloads them (no digest published)."""
    url = "https://dl.fbaipublicfiles.com/dinov2"
    return [Asset(f"dinov2_{arch}", f"dinov2_{arch}_pretrain.pth",
                  f"{url}/dinov2_{arch}/dinov2_{arch}_pretrain.pth", fallbacks=("torch_hub",),
                  description=f"DINOv2 {arch} backbone (facebookresearch/dinov2 hub checkpoint); "
                              "fd_dinov2 / kid_dinov2"
                              + (" (default)" if arch == "vitl14" else ""))
            for arch in ("vits14", "vitb14", "vitl14", "vitg14")]


def _imagereward(repo: str = "THUDM/ImageReward", bert: str = "google-bert/bert-base-uncased"
                 ) -> list[Asset]:
    """ImageReward-v1.0 and the two text files its BLIP text encoder needs (no digests)."""
    return [Asset("imagereward_v1", "ImageReward.pt", f"{_HF}/{repo}/resolve/main/ImageReward.pt",
                  fallbacks=(f"hf:{repo}",), description="ImageReward-v1.0 "
                  "state dict (BLIP ViT-L/16 + BERT + MLP); imagereward"),
            Asset("imagereward_med_config", "imagereward_med_config.json",
                  f"{_HF}/{repo}/resolve/main/med_config.json",
                  fallbacks=(f"hf:{repo}=med_config.json",),
                  description="BLIP med_config.json (ImageReward's text encoder); imagereward"),
            Asset("bert_base_uncased_vocab", "bert-base-uncased-vocab.txt",
                  f"{_HF}/{bert}/resolve/main/vocab.txt", fallbacks=(f"hf:{bert}=vocab.txt",),
                  description="BERT uncased WordPiece vocabulary (30,522 tokens); imagereward")]


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset("inception_pytorch_fid", "pt_inception-2015-12-05-6726825d.pth",
              "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
              "pt_inception-2015-12-05-6726825d.pth",
              sha256_prefix="6726825d", fallbacks=("torch_hub",),
              description="FID Inception v3 (TF 2015-12-05 port) state dict, pytorch-fid; "
                          "fid_legacy / kid_legacy"),
        Asset("inception_clean_fid", "inception-2015-12-05.pt",
              "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
              "inception-2015-12-05.pt", fallbacks=("tmp",),
              description="FID Inception v3 TorchScript (StyleGAN2-ADA), clean-fid; "
                          "fid_clean / kid_clean"),
        Asset("inception_torch_fidelity", "weights-inception-2015-12-05-6726825d.pth",
              "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
              "weights-inception-2015-12-05-6726825d.pth", fallbacks=("torch_hub",),
              description="FID Inception v3 (TF 2015-12-05 port) state dict, torch-fidelity's "
                          "conversion (no digest published; its loader checks none); "
                          "inception_score"),
        Asset("lpips_alexnet", "alexnet-owt-7be5be79.pth",
              "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
              sha256_prefix="7be5be79", fallbacks=("torch_hub",),
              description="torchvision AlexNet, LPIPS backbone (heads ship with lpips)"),
        Asset("open_clip_vit_g14_laion2b_s34b_b88k", "open_clip_vit_g14_laion2b_s34b_b88k.bin",
              f"{_HF}/laion/CLIP-ViT-g-14-laion2B-s34B-b88K/resolve/main/"
              "open_clip_pytorch_model.bin",
              fallbacks=("hf:laion/CLIP-ViT-g-14-laion2B-s34B-b88K=open_clip_pytorch_model.bin",),
              description="open_clip ViT-g-14 laion2b_s34b_b88k; clip_score (BK-SDM, SnapFusion)"),
        _openai_clip("open_clip_vit_l14_openai", "ViT-L-14.pt",
                     "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
                     "OpenAI CLIP ViT-L/14 (TorchScript)"),
        _openai_clip("open_clip_vit_l14_336_openai", "ViT-L-14-336px.pt",
                     "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
                     "OpenAI CLIP ViT-L/14@336 (TorchScript); cmmd"),
        Asset("laion_aesthetic_v2_vit_l14", "sac+logos+ava1-l14-linearMSE.pth",
              "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
              "sac+logos+ava1-l14-linearMSE.pth",
              description="LAION aesthetic predictor v2 MLP head on OpenAI CLIP ViT-L/14 "
                          "(open_clip_vit_l14_openai); laion_aesthetic"),
        Asset("hpsv21_vit_h14", "HPS_v2.1_compressed.pt",
              f"{_HF}/xswu/HPSv2/resolve/main/HPS_v2.1_compressed.pt",
              fallbacks=("hf:xswu/HPSv2=HPS_v2.1_compressed.pt",),
              description="HPSv2.1 checkpoint (open_clip ViT-H-14, its state_dict); hpsv21"),
        Asset("pickscore_v1", "pickscore_v1.safetensors",
              f"{_HF}/yuvalkirstain/PickScore_v1/resolve/main/model.safetensors",
              fallbacks=("hf:yuvalkirstain/PickScore_v1=model.safetensors",),
              description="PickScore v1 (transformers CLIPModel, CLIP ViT-H/14); pickscore"),
        *_imagereward(),
        *_dinov2(),
        *_shapes_evaluators(),
        *_shapes_pipeline(),
    ]
}


@dataclass(frozen=True)
class ResolvedAsset:
    """A weight file found on disk, with its sha256 and how it was checked."""

    path: Path
    sha256: str
    verified: bool  # True when the digest (or its prefix) matched the registry
    verification: str = ""  # how: "sha256", "sha256 prefix", "no published digest", "stand-in"

    def to_record(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "verified": self.verified,
                "verification": self.verification or ("sha256" if self.verified else "none")}


def open_clip_asset_name(model_name: str, pretrained: str) -> str:
    """Registry name of an open_clip checkpoint, e.g. ``open_clip_vit_g14_laion2b_s34b_b88k``
    (``ViT-L-14-336`` -> ``vit_l14_336``)."""
    parts = model_name.lower().replace("/", "").split("-")
    model = parts[0]
    if len(parts) >= 3:
        model = f"{parts[0]}_{parts[1]}{parts[2]}" + "".join(f"_{p}" for p in parts[3:])
    elif len(parts) == 2:
        model = f"{parts[0]}_{parts[1]}"
    return f"open_clip_{model}_{pretrained.lower()}"


def get(name: str) -> Asset:
    """The registry entry ``name``; open_clip checkpoints not listed get a generic entry."""
    if name in ASSETS:
        return ASSETS[name]
    if name.startswith("open_clip_"):
        return Asset(name, f"{name}.bin", "the open_clip pretrained tag's download URL "
                     "(open_clip.get_pretrained_url(model, tag))")
    raise KeyError(f"unknown asset {name!r}; known: {sorted(ASSETS)}")


def _where(assets_dir: str | os.PathLike | None) -> str:
    folder = (Path(assets_dir).expanduser() if assets_dir else default_assets_dir()).resolve()
    return f"{folder} (paths.assets_dir=, default $EVALSUITE_ASSETS)"


def missing_message(asset: Asset, assets_dir: str | os.PathLike | None) -> str:
    """The one-paragraph error for a missing file: what, digest, where looked, what to do."""
    looked = ", ".join(str(p) for p in asset.candidates(assets_dir))
    return (f"weight file {asset.filename} ({asset.name}) is missing; looked in {looked}. "
            f"Expected sha256: {asset.expected()}. Put it in {_where(assets_dir)}: on a machine "
            f"with internet run `{FETCH_HINT.format(name=asset.name)}`, or download {asset.url} "
            f"and save it as {asset.filename}.")


def resolve(name: str, assets_dir: str | os.PathLike | None,
            digest_cache: str | os.PathLike | None = None, verify: bool = True) -> ResolvedAsset:
    """Find asset ``name`` on disk and check its digest.

    Raises ``MissingAssetError`` if no candidate exists, ``CorruptAssetError`` if the first one
    found has the wrong digest and ``verify`` is true. With ``verify=False`` (stand-in files in
    tests and smoke runs) a mismatching file is accepted and marked ``verified=False``.
    ``digest_cache`` (a JSON file) remembers digests by path, size and mtime.
    """
    asset = get(name)
    for path in asset.candidates(assets_dir):
        if not path.is_file():
            continue
        digest = cached_sha256(path, digest_cache)
        ok = asset.check_digest(digest)
        if ok is None:
            return ResolvedAsset(path, digest, False, "no published digest; sha256 recorded")
        if ok:
            return ResolvedAsset(path, digest, True,
                                 "sha256" if asset.sha256 else "sha256 prefix")
        if not verify:
            return ResolvedAsset(path, digest, False, "stand-in: digest mismatch accepted "
                                 "(metrics.verify_assets=false)")
        raise CorruptAssetError(
            f"weight file {path} ({name}) has sha256 {digest}, expected {asset.expected()}: it "
            f"is corrupt, truncated or a different release. Delete it and put the right file in "
            f"{_where(assets_dir)}: run `{FETCH_HINT.format(name=name)}` on a machine with "
            f"internet, or download {asset.url}. (For stand-in weights in tests: "
            "metrics.verify_assets=false; the record then says the weights were not verified.)")
    raise MissingAssetError(missing_message(asset, assets_dir))


@dataclass(frozen=True)
class AssetStatus:
    """One line of ``evalsuite assets``."""

    name: str
    filename: str
    state: str  # "present", "missing", "corrupt", "unverified"
    path: str | None
    detail: str


def check(names: Iterable[str], assets_dir: str | os.PathLike | None,
          digest_cache: str | os.PathLike | None = None, verify: bool = True) -> list[AssetStatus]:
    """Status of each named asset, without raising."""
    out = []
    for name in names:
        asset = get(name)
        try:
            r = resolve(name, assets_dir, digest_cache, verify)
        except CorruptAssetError as e:
            out.append(AssetStatus(name, asset.filename, "corrupt", None, str(e)))
        except MissingAssetError as e:
            out.append(AssetStatus(name, asset.filename, "missing", None, str(e)))
        else:
            state = "present" if r.verified else "unverified"
            out.append(AssetStatus(name, asset.filename, state, str(r.path), r.verification))
    return out


def fetch(name: str, assets_dir: str | os.PathLike | None, mirror: str | None = None,
          verify: bool = True, timeout: float = 60.0) -> Path:
    """Download asset ``name`` into the assets folder (atomically) and check its digest.

    ``mirror``: a base URL that serves files under their canonical names (an institutional
    mirror, or a local server in tests) used instead of the upstream URL.
    """
    asset = get(name)
    if not asset.url.startswith(("http://", "https://")) and not mirror:
        raise MissingAssetError(f"no download URL is known for {name}; {asset.url}")
    url = f"{mirror.rstrip('/')}/{asset.filename}" if mirror else asset.url
    folder = Path(assets_dir).expanduser() if assets_dir else default_assets_dir()
    resp = _open_url(name, url, folder / asset.filename, timeout)  # first: offline writes nothing
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f, resp:
            while block := resp.read(1 << 20):
                h.update(block)
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        digest = h.hexdigest()
        if verify and asset.check_digest(digest) is False:
            raise CorruptAssetError(f"downloaded {url} has sha256 {digest}, expected "
                                    f"{asset.expected()}; not saved")
        os.replace(tmp, folder / asset.filename)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / asset.filename


def _open_url(name: str, url: str, dest: Path, timeout: float) -> Any:
    """The open response for ``url``; no network (evalsuite runs offline) or an HTTP error is
    a ``MissingAssetError`` that says where to put the file by hand."""
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (OSError, ValueError) as e:  # URLError, HTTPError, socket errors, a bad URL
        reason = getattr(e, "reason", None) or e
        raise MissingAssetError(f"could not download asset {name} from {url} ({reason}). "
                                "evalsuite runs offline unless this machine can reach that "
                                "address: download the file on a machine that can, and copy "
                                f"it to {dest} (assets.fetch=false then finds it), or set "
                                "assets.mirror=<base URL of a mirror you can reach>") from None
