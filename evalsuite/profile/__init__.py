"""Efficiency profiling: parameters, FLOPs (attention included) and measured latency."""

from evalsuite.profile.flops import COUNTED, FlopReport, count_flops, count_module_flops
from evalsuite.profile.latency import LatencyReport, block_latency_table, measure_latency
from evalsuite.profile.params import count_parameters, parameters_by_block
from evalsuite.profile.pipeline import pipeline_calls, pipeline_cost

__all__ = [
    "COUNTED",
    "FlopReport",
    "LatencyReport",
    "block_latency_table",
    "count_flops",
    "count_module_flops",
    "count_parameters",
    "measure_latency",
    "parameters_by_block",
    "pipeline_calls",
    "pipeline_cost",
]
