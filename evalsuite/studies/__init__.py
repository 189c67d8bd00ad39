"""Built-in studies: multi-run evaluations that produce their own table and plot.

``block_sensitivity``: SnapFusion's architecture-evolving evaluation. Every cross-attention
and residual block the model could lose is removed in turn (zero-shot, ``drop_blocks``),
evaluated by a real ``evalsuite run`` on a prompt subset, priced by the per-block latency
lookup table, and ranked by quality lost per millisecond saved. ``evalsuite study`` runs it;
``evalsuite.studies.block_sensitivity.run_study(cfg)`` does the same from Python.

Nothing is imported here, so that importing one study module loads no other (and no torch);
the study's config schema lives in ``evalsuite.config.study``.
"""
