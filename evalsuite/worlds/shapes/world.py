"""The shapes world: scenes, a deterministic renderer and captions whose truth is exact.

A scene holds one or two flat-coloured objects on a light background. Every object has a
shape, a colour, a size and one of five positions; a two-object scene places its objects on
opposite sides (left/right or top/bottom) and names their relation. Captions state every
attribute the checker reads, so :func:`parse_caption` recovers the truth of a scene from its
caption alone (every paraphrase names the same objects, positions and relation).

The renderer supersamples 4x and box-filters down, so edges are antialiased. ``texture_seed``
drives the only randomness inside a render: a light background texture (for textured
backgrounds) and a sub-position jitter of at most 3% of the image size, so a scene has many
slightly different renders but one truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalsuite.errors import ConfigError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (30, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 30),
    "purple": (140, 50, 190),
    "orange": (245, 130, 20),
}
SIZES: dict[str, float] = {"small": 0.10, "large": 0.18}  # radius as a fraction of the image
POSITIONS: dict[str, tuple[float, float]] = {  # (x, y) centre as a fraction of the image
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "centre": (0.5, 0.5),
}
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
# relation of the first object to the second -> (position of first, position of second)
RELATION_POSITIONS: dict[str, tuple[str, str]] = {
    "left of": ("left", "right"),
    "right of": ("right", "left"),
    "above": ("top", "bottom"),
    "below": ("bottom", "top"),
}
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], bool]] = {  # name -> (rgb, textured)
    "white": ((242, 242, 242), False),
    "grey": ((200, 200, 200), False),
    "paper": ((232, 222, 198), True),
}
POSITION_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
N_CAPTION_VARIANTS = 3
_SUPERSAMPLE = 4
_JITTER = 0.03


@dataclass(frozen=True)
class Obj:
    """One object: names from SHAPES, COLOURS, SIZES and POSITIONS."""

    shape: str
    colour: str
    size: str
    position: str

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.shape, SHAPES, "shape"),
            (self.colour, COLOURS, "colour"),
            (self.size, SIZES, "size"),
            (self.position, POSITIONS, "position"),
        ):
            if value not in allowed:
                raise ConfigError(f"Unknown {what} {value!r}; the shapes world knows {sorted(allowed)}.")


@dataclass(frozen=True)
class Scene:
    """One or two objects; ``relation`` (of the first to the second) only for two."""

    objects: tuple[Obj, ...]
    relation: str | None
    background: str

    def __post_init__(self) -> None:
        if len(self.objects) not in (1, 2):
            raise ConfigError(f"A shapes scene holds 1 or 2 objects, not {len(self.objects)}.")
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"Unknown background {self.background!r}; known: {sorted(BACKGROUNDS)}.")
        if len(self.objects) == 1 and self.relation is not None:
            raise ConfigError("A one-object scene has no relation.")
        if len(self.objects) == 2:
            if self.relation not in RELATION_POSITIONS:
                raise ConfigError(f"A two-object scene needs a relation from {RELATIONS}, not {self.relation!r}.")
            expected = RELATION_POSITIONS[self.relation]
            actual = (self.objects[0].position, self.objects[1].position)
            if actual != expected:
                raise ConfigError(
                    f"Relation {self.relation!r} puts the objects at {expected}, but they are at {actual}."
                )

    def slots(self) -> dict[str, Obj]:
        """Objects keyed by position (positions are distinct): the order-free truth."""
        return {o.position: o for o in self.objects}


def sample_scene(rng: np.random.Generator) -> Scene:
    """Draw a scene: half one object at any position, half two objects on opposite sides."""

    def obj(position: str) -> Obj:
        return Obj(
            shape=SHAPES[rng.integers(len(SHAPES))],
            colour=list(COLOURS)[rng.integers(len(COLOURS))],
            size=list(SIZES)[rng.integers(len(SIZES))],
            position=position,
        )

    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    if rng.random() < 0.5:
        return Scene((obj(list(POSITIONS)[rng.integers(len(POSITIONS))]),), None, background)
    relation = RELATIONS[rng.integers(len(RELATIONS))]
    first, second = RELATION_POSITIONS[relation]
    return Scene((obj(first), obj(second)), relation, background)


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of a shape of radius ``r`` centred at the origin of (dx, dy)."""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.82 * r
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if shape == "triangle":  # pointing up, centroid at the origin
        h = 1.5 * r
        top, base = -h * 2 / 3, h / 3
        half_width = (dy - top) / h * (r * 1.05)
        return (dy >= top) & (dy <= base) & (np.abs(dx) <= half_width)
    raise ConfigError(f"Unknown shape {shape!r}.")


def _background(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    rgb, textured = BACKGROUNDS[name]
    image = np.empty((size, size, 3), dtype=np.float64)
    image[:] = rgb
    if textured:
        # Low-frequency value noise: a coarse random grid upsampled bilinearly, +-10 levels.
        coarse = rng.uniform(-10.0, 10.0, size=(5, 5))
        coords = np.linspace(0, 4, size)
        i0 = np.clip(np.floor(coords).astype(int), 0, 3)
        t = coords - i0
        rows = coarse[i0] * (1 - t)[:, None] + coarse[i0 + 1] * t[:, None]
        field = rows[:, i0] * (1 - t)[None, :] + rows[:, i0 + 1] * t[None, :]
        image += field[:, :, None]
    return image


def render(scene: Scene, size: int = 64, texture_seed: int = 0) -> np.ndarray:
    """Render ``scene`` as a uint8 ``size`` x ``size`` x 3 array; same inputs, same bytes."""
    rng = np.random.default_rng([texture_seed, 0x5EED])
    image = _background(scene.background, size, rng)
    big = size * _SUPERSAMPLE
    centres = (np.arange(big) + 0.5) / big  # pixel centres in [0, 1]
    for obj in scene.objects:
        cx, cy = POSITIONS[obj.position]
        cx += rng.uniform(-_JITTER, _JITTER)
        cy += rng.uniform(-_JITTER, _JITTER)
        mask = _shape_mask(obj.shape, centres[None, :] - cx, centres[:, None] - cy, SIZES[obj.size])
        # Box-filter the supersampled mask: fractional coverage gives antialiased edges.
        coverage = mask.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
        colour = np.asarray(COLOURS[obj.colour], dtype=np.float64)
        image = image * (1 - coverage[:, :, None]) + colour * coverage[:, :, None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _describe(obj: Obj) -> str:
    return f"{obj.size} {obj.colour} {obj.shape}"


def caption(scene: Scene, variant: int = 0) -> str:
    """A caption naming every object's size, colour, shape and position (or the relation).

    ``variant`` picks one of ``N_CAPTION_VARIANTS`` paraphrases (taken modulo that number).
    """
    v = variant % N_CAPTION_VARIANTS
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        where = POSITION_PHRASES[obj.position]
        return (
            f"a {_describe(obj)} {where}",
            f"{where}, a {_describe(obj)}",
            f"a picture of a {_describe(obj)} {where}",
        )[v]
    a, b = scene.objects
    rel = scene.relation
    assert rel is not None  # guaranteed by Scene's validation for two objects
    return (
        f"a {_describe(a)} {rel} a {_describe(b)}",
        f"a {_describe(b)} {INVERSE_RELATION[rel]} a {_describe(a)}",
        f"a picture of a {_describe(a)} {rel} a {_describe(b)}",
    )[v]


_OBJ_RE = re.compile(
    r"\b(" + "|".join(SIZES) + r") (" + "|".join(COLOURS) + r") (" + "|".join(SHAPES) + r")\b"
)
_REL_RE = re.compile(r"\b(" + "|".join(RELATIONS) + r")\b")
_POS_RE = re.compile("|".join(re.escape(p) for p in POSITION_PHRASES.values()))


def parse_caption(text: str, background: str = "white") -> Scene:
    """Recover the scene truth (objects, positions, relation) from a caption of this world.

    The background is not in captions; it is set to ``background``. Raises ``ConfigError``
    for text that is not a shapes-world caption.
    """
    text = text.strip().lower()
    objs = _OBJ_RE.findall(text)
    if len(objs) == 1:
        pos = _POS_RE.findall(text)
        if len(pos) != 1:
            raise ConfigError(f"Not a shapes-world caption (no single position phrase): {text!r}.")
        position = {v: k for k, v in POSITION_PHRASES.items()}[pos[0]]
        size, colour, shape = objs[0]
        return Scene((Obj(shape, colour, size, position),), None, background)
    rels = _REL_RE.findall(text)
    if len(objs) != 2 or len(rels) != 1:
        raise ConfigError(f"Not a shapes-world caption (expected 1 object, or 2 and a relation): {text!r}.")
    first, second = RELATION_POSITIONS[rels[0]]
    a = Obj(objs[0][2], objs[0][1], objs[0][0], first)
    b = Obj(objs[1][2], objs[1][1], objs[1][0], second)
    return Scene((a, b), rels[0], background)


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    """JSON-able truth of a scene."""
    return {
        "objects": [
            {"shape": o.shape, "colour": o.colour, "size": o.size, "position": o.position}
            for o in scene.objects
        ],
        "relation": scene.relation,
        "background": scene.background,
    }


def scene_from_dict(data: dict[str, Any]) -> Scene:
    """Inverse of :func:`scene_to_dict` (validates the scene)."""
    try:
        objects = tuple(Obj(**o) for o in data["objects"])
        return Scene(objects, data.get("relation"), data["background"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"Not a shapes scene dict ({exc}): {data!r}.") from exc


def category(truth: Scene) -> str:
    """The prompt category used in breakdowns (a scene's, so the prompt set can name it
    without the scoring networks)."""
    return "one_object" if len(truth.objects) == 1 else "two_objects"
