"""The DiffSeg30k metrics (DESIGN.md "Metric definitions"), implemented once for every caller.

``DiffSegMetric`` is the library API; ``evaluate_metrics/diffseg30k`` is a thin ``evaluate`` shell
that stores :class:`PairStats` rows instead of label maps.
"""

from diffseg30k.metrics.core import AVERAGING, METRIC_VERSION, DiffSegMetric
from diffseg30k.metrics.inputs import LabelMapError
from diffseg30k.metrics.pair import PairStats
from diffseg30k.metrics.ranking import average_precision

__all__ = ["AVERAGING", "METRIC_VERSION", "DiffSegMetric", "LabelMapError", "PairStats", "average_precision"]
