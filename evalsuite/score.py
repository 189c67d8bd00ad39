"""``evalsuite score`` as a function: ``score(cfg)`` (the task is ``evalsuite.tasks.score``).

Kept as the stable import path for notebooks.
"""

from evalsuite.tasks import score
from evalsuite.tasks.score import load_prompts

__all__ = ["load_prompts", "score"]
