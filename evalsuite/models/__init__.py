"""Models: where pipelines come from (sources), the generator that samples them, presets.

Heavy libraries (torch, diffusers) are imported inside the functions that need them, so that
a re-run whose samples and metric values are all cached never pays for importing them.
"""
