"""The DiffSeg30k metrics (DESIGN.md "Metric definitions"), implemented once for every caller.

``DiffSegMetric`` is the library API; ``evaluate_metrics/diffseg30k`` is a thin ``evaluate`` shell
that stores :class:`PairStats` rows instead of label maps.
"""

from diffseg30k.metrics.core import AVERAGING, CONVENTIONS, IMDL_KEYS, METRIC_VERSION, DiffSegMetric
from diffseg30k.metrics.inputs import LabelMapError
from diffseg30k.metrics.pair import PairStats
from diffseg30k.metrics.ranking import average_precision, roc_auc

__all__ = ["AVERAGING", "CONVENTIONS", "IMDL_KEYS", "METRIC_VERSION", "DiffSegMetric", "LabelMapError",
           "PairStats", "average_precision", "roc_auc"]
