"""Structured-config schemas for every config group.

Each group's YAML files are validated against these dataclasses when Hydra composes the
config, so a misspelt key (``sampler.stepz=5``) or a wrong type (``sampler.steps=abc``) fails
before any model is built, with Hydra naming the full key. Groups whose options carry their
own ``_target_`` parameters (``ablation``, ``metrics.items``) are open dicts here; their
parameters are checked by the dataclass or class they instantiate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from evalsuite.config.export import ExportConfig, register_export
from evalsuite.config.recovery import RecoveryConfig, register_recovery


@dataclass
class ModelConfig:
    """Where the pipeline comes from. ``_target_`` builds a ``evalsuite.models.ModelSource``."""

    _target_: str = MISSING
    name: str = MISSING  # the preset's name, as it appears in tables
    arch: Optional[str] = None  # architecture built in memory when no path is given ("tiny")
    path: Optional[str] = None  # local diffusers pipeline folder (model_index.json inside)
    init_seed: int = 0  # seed of the random initialisation when no weights are loaded
    resolution: int = 512  # generated image side, in pixels


@dataclass
class SamplerConfig:
    """How images are sampled. Every setting is part of the sample store's key, batch size
    included: batched kernels round the last bits differently for different batches."""

    scheduler: str = "pndm"  # see evalsuite.models.schedulers.SCHEDULERS
    steps: int = 25
    guidance_scale: float = 7.5
    negative_prompt: Optional[str] = None
    prediction_type: Optional[str] = None  # epsilon | v_prediction; None: the model's own
    seed: int = 1234  # run seed; each prompt's seed is derived from it and the prompt id
    batch_size: int = 8  # the noise is per prompt, but batched kernels round per batch
    dtype: str = "float32"  # float32 | float16 | bfloat16


@dataclass
class DatasetConfig:
    """A prompt set. ``_target_`` builds an ``evalsuite.data.PromptSet``."""

    _target_: str = MISSING
    name: str = MISSING
    limit: Optional[int] = None  # use the first N prompts of the set


@dataclass
class TextDatasetConfig(DatasetConfig):
    path: Optional[str] = None  # required: one prompt per line


@dataclass
class ManifestDatasetConfig(DatasetConfig):
    path: Optional[str] = None  # required: a manifest written by evalsuite


@dataclass
class TableDatasetConfig(DatasetConfig):
    """CSV or JSONL prompts with named fields (PartiPrompts: text_field=Prompt)."""

    path: Optional[str] = None  # required
    text_field: str = "prompt"
    id_field: Optional[str] = None  # default: row numbers
    category_field: Optional[str] = None  # enables per-category breakdowns


@dataclass
class CocoDatasetConfig(DatasetConfig):
    """MS-COCO captions: N images chosen by seed, one caption each (evalsuite/data/coco.py)."""

    annotations: str = MISSING  # captions_val2014.json or captions_val2017.json
    images_dir: Optional[str] = None  # if set, every chosen image must exist there
    n: Optional[int] = None  # number of images (None: all)
    seed: int = 0  # selects the images and the caption of each


@dataclass
class ShapesDatasetConfig(DatasetConfig):
    """The shapes world's prompts: the first n items of a split (evalsuite/worlds/shapes)."""

    split: str = "test"  # train | val | test
    n: int = 64
    seed: int = 0


@dataclass
class ReferenceConfig:
    """A reference image set for the metrics that compare against real images.

    ``stats`` imports precomputed statistics: metric name (``fid_legacy``, ``fid_clean``) ->
    an ``.npz`` with ``mu`` and ``sigma`` as clean-fid / pytorch-fid write them. That metric
    then uses the file (recorded by sha256) instead of features of the reference images.
    """

    _target_: str = MISSING
    name: str = MISSING
    resolution: int = 512
    stats: Dict[str, str] = field(default_factory=dict)


@dataclass
class CocoReferenceConfig(ReferenceConfig):
    """COCO photographs as the reference set (evalsuite/data/coco_reference.py)."""

    annotations: str = MISSING  # captions_val2014.json / captions_val2017.json
    images_dir: str = MISSING  # the split's image folder (val2014/, val2017/)
    subset: str = "split"  # split: every image of the annotation file | prompts: n chosen by seed
    n: Optional[int] = None  # subset=prompts: the dataset's n (same seed -> the same images)
    seed: int = 0  # subset=prompts: the dataset's seed
    resize: str = "center_crop"  # squash | center_crop (then resize) | none


@dataclass
class ShapesReferenceConfig(ReferenceConfig):
    """Renders of the shapes prompt set's items (same split, n and seed as the dataset)."""

    split: str = "test"
    n: Optional[int] = 64  # None (a dataset without n): 64
    seed: int = 0


@dataclass
class ProtocolConfig:
    """A named evaluation protocol (conf/protocol/): the settings that make numbers comparable.

    ``fields`` are config paths (``dataset``, ``sampler.steps``...) whose resolved values,
    with the prompt set's and reference set's content hashes, are the protocol: hashed into
    every record's ``protocol`` field, which tables and ``evalsuite compare`` group by.
    ``varies`` are paths a study under this protocol sweeps (CFG scale): left out of the hash.
    ``requires`` are values the protocol needs from groups it does not set (``model.resolution:
    512``); a run that does not meet them, or that overrides a field on the command line, is
    recorded as a modified protocol (evalsuite/protocols.py).
    """

    name: str = MISSING
    version: int = 1  # bumped when a preset's settings change
    source: str = ""  # where the settings come from (paper, section, code)
    preset: bool = True  # False (``custom``): no published protocol to deviate from
    fields: List[str] = field(default_factory=list)
    varies: List[str] = field(default_factory=list)
    requires: Dict[str, Any] = field(default_factory=dict)  # values other groups must have


@dataclass
class VaeConfig:
    """``task=reconstruction``: which VAE encodes the reference images, which decoders decode.

    Paths are local ``AutoencoderKL`` folders (``config.json`` + weights); None means the
    model's own VAE. ``compare_decoder`` decodes the same latents with a second decoder
    (SnapFusion's decoder-distillation target) and is scored against the decoder under test.
    """

    encoder: Optional[str] = None
    decoder: Optional[str] = None
    compare_decoder: Optional[str] = None
    latents: str = "mode"  # mode: the posterior mean (deterministic) | sample: seeded draw
    seed: int = 0  # latents=sample: the draw of each image is seeded by (seed, image id)
    batch_size: int = 4


@dataclass
class MetricsConfig:
    """Which metrics to compute and what paired metrics compare.

    ``items`` maps a metric name to its ``_target_`` config. ``paired_with`` lists the pairings
    that paired metrics (PSNR, SSIM, LPIPS) are computed on: ``baseline`` (samples vs. the
    same model without ablations, same prompts and seeds) and/or ``reconstruction``
    (reference photographs vs. their round trip through the model's VAE).
    """

    items: Dict[str, Any] = field(default_factory=dict)
    paired_with: List[str] = field(default_factory=list)
    allow_random_weights: bool = False  # compute weight-needing metrics with random weights
    verify_assets: bool = True  # false: accept weight files whose sha256 differs (recorded)
    batch_size: int = 16
    bootstrap: int = 0  # resamples for confidence intervals (0: none)
    bootstrap_seed: int = 0


@dataclass
class PathsConfig:
    results_dir: str = "results"  # records/, tables/, samples/ and cache/ live here
    assets_dir: str = "assets"  # local weight files for metrics
    coco_dir: str = "data/coco"  # holds annotations/ and val2014/, val2017/ (never downloaded)


@dataclass
class ProfileConfig:
    """Settings of ``evalsuite profile`` (architecture-only unless ``latency`` is set)."""

    batch: int = 1
    text_len: int = 77
    latency: bool = False  # also time each component's forward on ``device`` (random weights)
    repeats: int = 5
    format: str = "table"  # table | json (one JSON document on stdout; logs on stderr)
    steps: Optional[int] = None  # whole-pipeline cost: denoising steps (None: sampler.steps)
    guidance_scale: Optional[float] = None  # > 1: CFG, two UNet calls a step (None: sampler's)


@dataclass
class ShardConfig:
    """Shard ``index`` of ``count`` of one evaluation (``evalsuite.produce.materialise``).

    ``merge_lease_s``: how long the shard computing the metrics holds its claim before
    another may take it over (sooner when its process is gone on the same host).
    """

    index: int = 0
    count: int = 1
    merge_lease_s: float = 24 * 3600.0


@dataclass
class LimitsConfig:
    """Bounds checked before any work (``evalsuite.config.validate``). Not part of the config
    hash: a bound changes what may run, never what is measured."""

    max_resolution: int = 2048  # largest image side; raise it on a GPU with the memory


@dataclass
class Config:
    """The root config of ``evalsuite run``."""

    model: ModelConfig = MISSING
    ablation: Dict[str, Any] = field(default_factory=dict)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    dataset: DatasetConfig = MISSING
    reference: ReferenceConfig = MISSING
    sampler: SamplerConfig = MISSING
    metrics: MetricsConfig = MISSING
    paths: PathsConfig = MISSING
    protocol: ProtocolConfig = MISSING
    task: str = "generate"  # generate | reconstruction (VAE round trip of the reference set)
    vae: VaeConfig = field(default_factory=VaeConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    stage: str = "all"  # all | generate | metrics
    allow_incomplete: bool = False  # stage=metrics on a sample set with missing images
    device: str = "cpu"
    threads: Optional[int] = None  # torch intra-op threads; parallel local jobs set 1
    name: Optional[str] = None  # free-form label stored in the record
    tags: List[str] = field(default_factory=list)
    export: ExportConfig = field(default_factory=ExportConfig)  # trackers (evalsuite.export)


@dataclass
class AssetsConfig:
    """Where metric weight files live and how they are checked (see ``evalsuite.assets``)."""

    # Deprecated aliases (conf/score.yaml, conf/assets.yaml feed them into the one name the
    # code reads): dir -> paths.assets_dir, verify -> metrics.verify_assets.
    dir: str = "assets"
    verify: bool = True
    check: bool = True  # ``evalsuite assets``: list needed files; exit 2 if any is missing
    fetch: bool = False  # ``evalsuite assets``: download missing files (needs internet)
    names: List[str] = field(default_factory=list)  # assets to act on; [] = what metrics need
    mirror: Optional[str] = None  # base URL serving files under their canonical names


@dataclass
class ScoreSettings:
    """``evalsuite score``: metrics on existing image folders, no model involved."""

    gen_dir: str = MISSING  # the images to score
    ref_dir: Optional[str] = None  # reference images (distribution and paired metrics)
    prompts: Optional[str] = None  # .txt (one per line, sorted-file order) or .json {id: text}
    pairs: bool = True  # paired metrics compare files with the same name in both folders
    reconstructions: bool = False  # gen_dir holds VAE reconstructions of ref_dir (enables rFID)
    bootstrap: int = 0  # deprecated alias of metrics.bootstrap
    bootstrap_seed: int = 0  # deprecated alias of metrics.bootstrap_seed


@dataclass
class ScoreConfig:
    """The root config of ``evalsuite score``."""

    score: ScoreSettings = field(default_factory=ScoreSettings)
    metrics: MetricsConfig = MISSING
    paths: PathsConfig = MISSING
    assets: AssetsConfig = field(default_factory=AssetsConfig)
    device: str = "cpu"
    threads: Optional[int] = None  # torch intra-op threads; parallel local jobs set 1
    name: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    export: ExportConfig = field(default_factory=ExportConfig)  # trackers (evalsuite.export)


@dataclass
class StatsSettings:
    out_dir: str = MISSING  # where <reference>-<metric>-<key>.npz files are written


@dataclass
class StatsRootConfig(Config):
    """The root config of ``evalsuite stats``: the run config plus ``stats``."""

    stats: StatsSettings = field(default_factory=StatsSettings)


@dataclass
class AssetsRootConfig:
    """The root config of ``evalsuite assets``: which metrics' weights to list or fetch."""

    metrics: MetricsConfig = MISSING
    paths: PathsConfig = MISSING
    assets: AssetsConfig = field(default_factory=AssetsConfig)
    device: str = "cpu"


def register_configs() -> None:
    """Register the schemas so each YAML option can extend its group's schema."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(name="score_schema", node=ScoreConfig)
    cs.store(name="assets_schema", node=AssetsRootConfig)
    cs.store(name="stats_schema", node=StatsRootConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="sampler", name="sampler_schema", node=SamplerConfig)
    cs.store(group="dataset", name="dataset_schema", node=DatasetConfig)
    cs.store(group="dataset", name="text_dataset_schema", node=TextDatasetConfig)
    cs.store(group="dataset", name="manifest_dataset_schema", node=ManifestDatasetConfig)
    cs.store(group="dataset", name="table_dataset_schema", node=TableDatasetConfig)
    cs.store(group="dataset", name="coco_dataset_schema", node=CocoDatasetConfig)
    cs.store(group="reference", name="reference_schema", node=ReferenceConfig)
    cs.store(group="reference", name="coco_reference_schema", node=CocoReferenceConfig)
    cs.store(group="dataset", name="shapes_dataset_schema", node=ShapesDatasetConfig)
    cs.store(group="reference", name="shapes_reference_schema", node=ShapesReferenceConfig)
    cs.store(group="protocol", name="protocol_schema", node=ProtocolConfig)
    cs.store(group="metrics", name="metrics_schema", node=MetricsConfig)
    cs.store(group="paths", name="paths_schema", node=PathsConfig)
    register_recovery(cs)
    register_export(cs)
