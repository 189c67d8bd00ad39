"""SnapFusion's action set, generated from a UNet's structure.

An action removes one cross-attention block (``Transformer2DModel``) or one residual block
(``ResnetBlock2D``) of one stage: SnapFusion's A-[i, j]. Actions are ``drop_blocks`` module
paths (``down_blocks.0.attentions.1``, ``mid_block.resnets.0``, ``up_blocks.2.resnets.3``), so
each one is evaluated by that ablation, and an action the ablation rejects (a residual block
that changes the width cannot become an identity) is left out with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalsuite.ablations.base import CROSS_DOWN, CROSS_MID, CROSS_UP, Layout
from evalsuite.errors import ConfigError, EvalsuiteError

KINDS = ("attentions", "resnets")
KIND_LABELS = {"attentions": "cross-attention", "resnets": "residual"}


@dataclass
class ActionSet:
    """The actions a study evaluates, and the candidates left out (action -> reason)."""

    actions: list[str]
    rejected: dict[str, str] = field(default_factory=dict)


def _stage(prefix: str, n_attentions: int, n_resnets: int, kinds: Sequence[str]) -> list[str]:
    out = []
    if "attentions" in kinds:
        out += [f"{prefix}.attentions.{j}" for j in range(n_attentions)]
    if "resnets" in kinds:
        out += [f"{prefix}.resnets.{j}" for j in range(n_resnets)]
    return out


def candidate_actions(layout: Layout, kinds: Sequence[str] = KINDS) -> list[str]:
    """Every block of ``layout`` a removal could target, in forward order (down, mid, up).

    Attention candidates exist only in cross-attention stages; each stage has one
    transformer per resnet, and an up stage has one resnet more than its down stage.
    """
    out: list[str] = []
    for i, block_type in enumerate(layout.down_types):
        n = layout.layers[i]
        out += _stage(f"down_blocks.{i}", n if block_type == CROSS_DOWN else 0, n, kinds)
    if layout.mid_type == CROSS_MID:
        out += _stage("mid_block", 1, 2, kinds)
    for i, block_type in enumerate(layout.up_types):
        n = layout.layers[layout.n - 1 - i] + 1
        out += _stage(f"up_blocks.{i}", n if block_type == CROSS_UP else 0, n, kinds)
    return out


def why_rejected(base_config: Mapping[str, Any], preset: Sequence[Any], action: str) -> str | None:
    """Why ``drop_blocks`` refuses ``action`` on base_config + preset (None if it accepts it).

    Uses the ablation API's own validation (parameters, combination with the preset's
    ablations, the final architecture), so the study never evaluates what a run would refuse.
    """
    from evalsuite.ablations import DropBlocks, plan

    try:
        plan(base_config, [*preset, DropBlocks(actions=(action,))], dry_run=False)
    except ConfigError as e:
        return str(e)
    return None


def select(candidates: Sequence[str], rejected: Mapping[str, str], wanted: Sequence[str],
           max_actions: int | None) -> list[str]:
    """The valid actions to evaluate: ``wanted`` (in its order) or all, capped at ``max_actions``."""
    valid = [a for a in candidates if a not in rejected]
    if wanted:
        for a in wanted:
            if a in rejected:
                raise EvalsuiteError(f"study.actions: {a} cannot be evaluated: {rejected[a]}")
            if a not in valid:
                raise EvalsuiteError(f"study.actions: {a} is not an action of this UNet; its actions "
                                     f"are {', '.join(valid)}")
        valid = list(dict.fromkeys(wanted))
    if max_actions is not None:
        if max_actions < 1:
            raise EvalsuiteError(f"study.max_actions must be >= 1 or null, got {max_actions}")
        valid = valid[:max_actions]
    if not valid:
        reasons = "; ".join(f"{a}: {r}" for a, r in list(rejected.items())[:3])
        raise EvalsuiteError(f"no block of this UNet can be removed by drop_blocks ({reasons})")
    return valid


def action_set(base_config: Mapping[str, Any], preset: Sequence[Any], kinds: Sequence[str],
               wanted: Sequence[str] = (), max_actions: int | None = None) -> ActionSet:
    """Generate, validate and select the actions for the UNet base_config + preset."""
    from evalsuite.ablations import plan

    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise EvalsuiteError(f"study.kinds must be a non-empty subset of {list(KINDS)}, got {list(kinds)}")
    final, _ = plan(base_config, list(preset), dry_run=False)
    candidates = candidate_actions(Layout.of(final), kinds)
    rejected = {a: r for a in candidates if (r := why_rejected(base_config, preset, a))}
    return ActionSet(select(candidates, rejected, wanted, max_actions), rejected)


def describe(action: str) -> dict[str, Any]:
    """Stage, kind and index of an action path (``up_blocks.2.resnets.1`` -> up_blocks.2, ...)."""
    stage, kind, j = action.rsplit(".", 2)
    return {"stage": stage, "kind": KIND_LABELS[kind], "index": int(j)}


def short_label(action: str) -> str:
    """Compact plot label: ``down_blocks.0.attentions.1`` -> ``d0.attn1``."""
    d = describe(action)
    stage = "mid" if d["stage"] == "mid_block" else d["stage"][0] + d["stage"].rsplit(".", 1)[1]
    return f"{stage}.{'attn' if d['kind'] == 'cross-attention' else 'res'}{d['index']}"
