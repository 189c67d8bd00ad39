"""Which stages feature KD compares, and forward hooks that capture their outputs.

A *stage* is a down block, the mid block or an up block; its output is what the next stage
receives: a down block's hidden states after its downsampler (``output[0]``, as BK-SDM's
hooks take it), the mid block's output, an up block's output after its upsampler.

Matching rule (``match_stages``), exactly:

1. Each student stage is paired with the teacher stage its weights come from, as the
   ablation's weight-inheritance plan (``evalsuite.ablations.plan``'s ``Sources``) states:
   down stage ``i`` -> teacher down stage ``sources.down[i]``, up stage ``j`` -> teacher up
   stage ``sources.up[j]``, mid block -> mid block. Without stage removal this is
   ``down_blocks.i <-> down_blocks.i``, ``mid_block <-> mid_block``, ``up_blocks.j <->
   up_blocks.j`` (every ablation that keeps the stage count: block pruning, attention
   changes, ``drop_blocks``' identities...). With ``drop_stages(count=c)`` the teacher's ``c``
   innermost down stages and first ``c`` up stages have no student stage and are skipped;
   student up stage ``j`` is matched with teacher up stage ``j + c`` (same resolution).
2. A pair is kept only if both stages exist and their outputs have the same resolution level
   and channel count (so the same shape). Dropped, with the reason recorded: a mid block the
   student lacks (``prune_resblocks(mid_block=false)``); the student's new innermost down stage
   after ``drop_stages``, which has no downsampler (its output is at twice the teacher
   stage's resolution); a mid block that runs at another level than the teacher's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from evalsuite.ablations import Layout, plan


@dataclass(frozen=True)
class StageMatch:
    """Matched (student, teacher) stage paths, and every stage left out with the reason."""

    pairs: tuple[tuple[str, str], ...]
    unmatched: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The record's form."""
        return {"pairs": [list(p) for p in self.pairs], "unmatched": dict(self.unmatched)}


def _outputs(layout: Layout) -> dict[str, tuple[int, int]]:
    """Stage path -> (output level, output channels) of a UNet with ``layout``."""
    n, ch = layout.n, layout.block_out_channels
    out = {f"down_blocks.{i}": (2**i * (2 if i < n - 1 else 1), ch[i]) for i in range(n)}
    if layout.mid_type is not None:
        out["mid_block"] = (2 ** (n - 1), ch[-1])
    for j in range(n):
        level = 2 ** (n - 1 - j)
        out[f"up_blocks.{j}"] = (level // 2 if j < n - 1 else level, ch[::-1][j])
    return out


def match_stages(teacher_config: Mapping[str, Any], specs: Sequence[Any]) -> StageMatch:
    """Pair the stages of ``teacher_config`` + ``specs`` (the student) with the teacher's."""
    final, sources = plan(dict(teacher_config), list(specs), dry_run=False)
    teacher, student = _outputs(Layout.of(teacher_config)), _outputs(Layout.of(final))
    wanted = [(f"down_blocks.{i}", f"down_blocks.{old}") for i, (old, _) in enumerate(sources.down)]
    wanted.append(("mid_block", "mid_block"))
    wanted += [(f"up_blocks.{j}", f"up_blocks.{old}") for j, (old, _) in enumerate(sources.up)]
    pairs, unmatched = [], {}
    for s, t in wanted:
        if s not in student:
            unmatched[f"student:{s}"] = "the student has no such stage"
        elif t not in teacher:
            unmatched[f"student:{s}"] = f"the teacher has no {t}"
        elif student[s] != teacher[t]:
            (ls, cs), (lt, ct) = student[s], teacher[t]
            unmatched[f"student:{s}"] = (f"output (level {ls}, {cs} channels) differs from teacher {t}'s "
                                         f"(level {lt}, {ct} channels)")
        else:
            pairs.append((s, t))
    used = {t for _, t in wanted if t in teacher}
    for t in teacher:
        if t not in used:
            unmatched[f"teacher:{t}"] = "no student stage inherits from it (removed)"
    return StageMatch(tuple(pairs), unmatched)


def _stage_output(output: Any) -> torch.Tensor:
    """A down block returns (hidden states, skip connections): the hidden states."""
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def capture(unet: torch.nn.Module, paths: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Forward hooks on the stages ``paths`` of ``unet``; yields the dict they fill (path ->
    the stage's output of the latest forward). The hooks are removed on exit."""
    store: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(path: str) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            store[path] = _stage_output(output)
        return hook

    try:
        for path in paths:
            handles.append(unet.get_submodule(path).register_forward_hook(hook_for(path)))
        yield store
    finally:
        for h in handles:
            h.remove()
