"""Metrics: one module per metric, pure math in ``functional/``, metadata on each class."""

from evalsuite.metrics.base import Metric, MetricResult, PairedMetric, TextImageMetric

__all__ = ["Metric", "MetricResult", "PairedMetric", "TextImageMetric"]
