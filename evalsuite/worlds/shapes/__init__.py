"""The shapes world: a renderer, splits, evaluators trained on it (see README, "The shapes world")."""
