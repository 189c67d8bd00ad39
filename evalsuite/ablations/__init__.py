"""UNet ablations from MobileDiffusion, SnapFusion and BK-SDM as composable, validated specs.

Each ablation is a frozen dataclass (``AblationSpec`` subclass) whose fields are its
parameters; ``conf/ablation/<name>.yaml`` instantiates one with Hydra. Resolutions are given
as *levels* (downsampling factor: 1 = highest resolution, 2, 4, 8), valid for SD v1.5 and the
tiny UNet alike. See ``api`` for the order of application and the save/reload contract, and
each class for its weight-inheritance rule.
"""

from evalsuite.ablations.api import (
    apply_ablations,
    build_ablated_unet,
    check_combination,
    load_ablated_unet,
    load_state_dict_strict,
    plan,
    recorded_specs,
    save_ablated_unet,
    spec_from_dict,
    spec_to_dict,
)
from evalsuite.ablations.attention import AblatedAttnProcessor, CrossAttnOnlyBlock, NoSelfAttention, ReluAttention, SharedKV
from evalsuite.ablations.base import AblationSpec, Layout
from evalsuite.ablations.blocks import DropBlocks, RemovedResnet, RemovedTransformer
from evalsuite.ablations.conv import SeparableConv, SeparableConv2d
from evalsuite.ablations.ffn import FFNRatio, SwishGLU
from evalsuite.ablations.stages import DropStages, MoreTransformers, NoTransformer, PruneResblocks

#: name -> spec class, for every ablation (the YAML file names in conf/ablation/).
ABLATIONS: dict[str, type[AblationSpec]] = dict(AblationSpec.registry)

__all__ = [
    "ABLATIONS",
    "AblatedAttnProcessor",
    "AblationSpec",
    "CrossAttnOnlyBlock",
    "DropBlocks",
    "DropStages",
    "FFNRatio",
    "Layout",
    "MoreTransformers",
    "NoSelfAttention",
    "NoTransformer",
    "PruneResblocks",
    "ReluAttention",
    "RemovedResnet",
    "RemovedTransformer",
    "SeparableConv",
    "SeparableConv2d",
    "SharedKV",
    "SwishGLU",
    "apply_ablations",
    "build_ablated_unet",
    "check_combination",
    "load_ablated_unet",
    "load_state_dict_strict",
    "plan",
    "recorded_specs",
    "save_ablated_unet",
    "spec_from_dict",
    "spec_to_dict",
]
