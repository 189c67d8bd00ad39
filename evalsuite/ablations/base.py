"""The ablation base class, its registry, and the UNet layout helpers every ablation shares.

Resolutions are expressed as *levels*: the downsampling factor of a stage relative to the
UNet's input latent (1 = highest resolution, then 2, 4, 8, ...). Down stage ``i`` and the up
stage mirroring it (``up_blocks[n-1-i]``) run at level ``2**i``; the mid block runs at the
innermost level ``2**(n-1)``. SD v1.5 (64x64 latent) has levels 1, 2, 4, 8 = 64, 32, 16, 8 px;
the tiny UNet (8x8 latent) has the same levels at 8, 4, 2, 1 px, so one ablation config
applies to both. (Levels name stages, not pixels: a downsampler at the end of stage ``i``
is counted at that stage's level.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from evalsuite.errors import ConfigError

CROSS_DOWN, PLAIN_DOWN = "CrossAttnDownBlock2D", "DownBlock2D"
CROSS_UP, PLAIN_UP = "CrossAttnUpBlock2D", "UpBlock2D"
CROSS_MID = "UNetMidBlock2DCrossAttn"


def _plain(value: Any) -> Any:
    """Turn lists (and OmegaConf ListConfigs) into tuples, recursively, so specs are hashable."""
    if isinstance(value, (str, bytes)) or isinstance(value, Mapping):
        return value
    if hasattr(value, "__iter__"):
        return tuple(_plain(v) for v in value)
    return value


@dataclass(frozen=True)
class AblationSpec:
    """A named, parameterised, composable UNet transformation (subclasses add params as fields).

    Life cycle: ``__post_init__`` checks the parameters alone (``check_params``); ``validate``
    checks them against a UNet config; config-level ablations then edit the config
    (``edit_config``); every ablation may finally change modules (``apply``). Errors are
    ``ConfigError`` naming the ablation and the parameter.
    """

    name: ClassVar[str] = ""
    #: True if the ablation changes the UNet config (the UNet is rebuilt from it); such
    #: ablations run before all module-surgery ones.
    config_level: ClassVar[bool] = False
    registry: ClassVar[dict[str, type[AblationSpec]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            AblationSpec.registry[cls.name] = cls

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _plain(getattr(self, field.name)))
        self.check_params()

    # -- hooks for subclasses -------------------------------------------------------------
    def check_params(self) -> None:
        """Check the parameters on their own (no model needed)."""

    def validate(self, unet_config: Mapping[str, Any]) -> None:
        """Check the parameters against a UNet config (raise ``ConfigError``)."""

    def edit_config(self, config: dict[str, Any], sources: Any) -> None:
        """Config-level ablations: edit the canonical config and the weight sources in place."""

    def apply(self, unet: nn.Module) -> None:
        """Module surgery on a built UNet (with or without weights), in place."""

    def target_levels(self) -> dict[str, set[int]]:
        """Levels this spec names explicitly, by parameter (used to detect contradictions)."""
        return {}

    # -- helpers ------------------------------------------------------------------------------
    def error(self, param: str | None, message: str) -> ConfigError:
        """A ConfigError naming this ablation and (if it has one) the parameter at fault."""
        where = f"ablation '{self.name}'" + (f", parameter '{param}'" if param else "")
        return ConfigError(f"{where}: {message}")

    def require_int(self, param: str, value: Any, minimum: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(param, f"must be an integer >= {minimum}, got {value!r}")

    def require_bool(self, param: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise self.error(param, f"must be true or false, got {value!r}")

    def require_levels(self, param: str, levels: Any, allow_empty: bool = False) -> None:
        """Levels must be powers of two (1, 2, 4, ...), without repeats."""
        if not isinstance(levels, tuple) or (not levels and not allow_empty):
            raise self.error(param, f"must be a non-empty list of levels (1, 2, 4, ...), got {levels!r}")
        for level in levels:
            if isinstance(level, bool) or not isinstance(level, int) or level < 1 or level & (level - 1):
                raise self.error(param, f"level {level!r} is not a power of two (1 = highest resolution)")
        if len(set(levels)) != len(levels):
            raise self.error(param, f"repeated level in {list(levels)}")

    def check_levels_exist(self, param: str, levels: tuple[int, ...], config: Mapping[str, Any]) -> None:
        have = Layout.of(config).levels
        for level in levels:
            if level not in have:
                raise self.error(
                    param, f"level {level} does not exist in this UNet (levels {list(have)}; 1 = highest resolution)"
                )


@dataclass(frozen=True)
class TransformerLevelsSpec(AblationSpec):
    """Base of ablations that change the transformer blocks at a list of levels (``levels``).

    Shares their parameter checks: the levels are powers of two, exist in the UNet and hold
    transformer blocks. Subclasses set their own default ``levels`` and say in ``acts_as``
    what they do to the blocks, for the error message.
    """

    #: completes "level N has no transformer blocks to ...".
    acts_as: ClassVar[str] = "change"
    levels: tuple[int, ...] = (1,)

    def check_params(self) -> None:
        self.require_levels("levels", self.levels)

    def target_levels(self) -> dict[str, set[int]]:
        return {"levels": set(self.levels)}

    def validate(self, unet_config: Mapping[str, Any]) -> None:
        self.check_levels_exist("levels", self.levels, unet_config)
        layout = Layout.of(unet_config)
        for level in self.levels:
            if not layout.has_transformers(level):
                raise self.error("levels", f"level {level} has no transformer blocks to {self.acts_as}")


@dataclass(frozen=True)
class Layout:
    """The stage structure of a UNet2DConditionModel, derived from its config."""

    block_out_channels: tuple[int, ...]
    down_types: tuple[str, ...]
    up_types: tuple[str, ...]
    mid_type: str | None
    layers: tuple[int, ...]  # resnets per down stage; up stage mirroring it has one more

    @staticmethod
    def of(config: Mapping[str, Any]) -> Layout:
        n = len(config["down_block_types"])
        layers = config.get("layers_per_block", 2)
        layers = (layers,) * n if isinstance(layers, int) else tuple(layers)
        return Layout(
            tuple(config["block_out_channels"]),
            tuple(config["down_block_types"]),
            tuple(config["up_block_types"]),
            config.get("mid_block_type", CROSS_MID),
            layers,
        )

    @property
    def n(self) -> int:
        return len(self.down_types)

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.n))

    @property
    def mid_level(self) -> int:
        return 2 ** (self.n - 1)

    def down_index(self, level: int) -> int:
        return level.bit_length() - 1

    def up_index(self, level: int) -> int:
        return self.n - 1 - self.down_index(level)

    def has_transformers(self, level: int) -> bool:
        """Whether any stage (down, up, or the mid block) at ``level`` holds transformer blocks."""
        i = self.down_index(level)
        mid = level == self.mid_level and self.mid_type == CROSS_MID
        return self.down_types[i] == CROSS_DOWN or self.up_types[self.n - 1 - i] == CROSS_UP or mid

    def down_resnet_channels(self, stage: int, j: int) -> tuple[int, int]:
        """(input, output) channels of resnet ``j`` in down stage ``stage``."""
        out = self.block_out_channels[stage]
        first_in = self.block_out_channels[stage - 1] if stage > 0 else self.block_out_channels[0]
        return (first_in if j == 0 else out), out

    def up_resnet_channels(self, stage: int, j: int) -> tuple[int, int, int]:
        """(hidden input, skip, output) channels of resnet ``j`` in up stage ``stage`` (up order)."""
        rev = self.block_out_channels[::-1]
        out = rev[stage]
        prev = rev[stage - 1] if stage > 0 else rev[0]
        stage_in = rev[min(stage + 1, self.n - 1)]
        n_res = self.layers[self.n - 1 - stage] + 1
        skip = stage_in if j == n_res - 1 else out
        return (prev if j == 0 else out), skip, out


@dataclass(frozen=True)
class Stage:
    """One stage of a built UNet: its module path, level and block module."""

    path: str
    level: int
    block: nn.Module


def iter_stages(unet: nn.Module) -> Iterator[Stage]:
    """Down stages, the mid block (if any), then up stages, with their levels."""
    n = len(unet.down_blocks)
    for i, block in enumerate(unet.down_blocks):
        yield Stage(f"down_blocks.{i}", 2**i, block)
    if unet.mid_block is not None:
        yield Stage("mid_block", 2 ** (n - 1), unet.mid_block)
    for j, block in enumerate(unet.up_blocks):
        yield Stage(f"up_blocks.{j}", 2 ** (n - 1 - j), block)


def iter_transformer_blocks(unet: nn.Module, levels: set[int] | None = None) -> Iterator[tuple[str, nn.Module, int]]:
    """(path of the Transformer2DModel, that model, index) for each transformer block.

    ``levels=None`` means every level. Blocks removed by other ablations are skipped.
    """
    for stage in iter_stages(unet):
        if levels is not None and stage.level not in levels:
            continue
        for a, attn in enumerate(getattr(stage.block, "attentions", None) or []):
            for t in range(len(getattr(attn, "transformer_blocks", []))):
                yield f"{stage.path}.attentions.{a}", attn, t


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``path`` (ModuleList indices included)."""
    parent_path, _, leaf = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if isinstance(parent, (nn.ModuleList, nn.Sequential)):
        parent[int(leaf)] = module
    else:
        setattr(parent, leaf, module)
