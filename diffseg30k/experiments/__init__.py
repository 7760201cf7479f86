"""Experiments: the paper's tables from one command, and scoring that can be redone without a model.

- :mod:`~diffseg30k.experiments.evaluation`  run a detector over a split under distortions, save and score
- :mod:`~diffseg30k.experiments.predictions` prediction sets on disk (label maps, references, scores)
- :mod:`~diffseg30k.experiments.scoring`     headline metrics, breakdowns, bootstrap CIs (via DiffSegMetric)
- :mod:`~diffseg30k.experiments.baselines`   CNNSpot / UniversalFakeDetect training and scoring
- :mod:`~diffseg30k.experiments.plan`        resumable plans of named steps
- :mod:`~diffseg30k.experiments.config`      the ``quick`` and ``paper`` benchmark configurations
- :mod:`~diffseg30k.experiments.benchmark`   the benchmark plan (its ``data`` and ``figures`` steps)
- :mod:`~diffseg30k.experiments.tables`      one module per paper table (title, paper numbers, run, render)
- :mod:`~diffseg30k.experiments.steps`       the step registry the plan is built from
- :mod:`~diffseg30k.experiments.report`      report.md / results.json / evaluation.md
- :mod:`~diffseg30k.experiments.figures`     Fig. 5 confusion matrices, Fig. 6 grids (PNG)
- :mod:`~diffseg30k.experiments.reference`   metric keys and hold-outs every table shares
"""

from diffseg30k.lazy import lazy_exports

#: The public API (imported on first use, so importing the package stays cheap).
__all__, __getattr__ = lazy_exports(__name__, {
    "run_benchmark": "diffseg30k.experiments.benchmark",
    "build_plan": "diffseg30k.experiments.benchmark",
    "BenchmarkConfig": "diffseg30k.experiments.config",
    "quick_config": "diffseg30k.experiments.config",
    "paper_config": "diffseg30k.experiments.config",
    "get_config": "diffseg30k.experiments.config",
    "evaluate_predictor": "diffseg30k.experiments.evaluation",
    "detector_predictor": "diffseg30k.experiments.evaluation",
    "score_prediction_set": "diffseg30k.experiments.evaluation",
    "rescore": "diffseg30k.experiments.evaluation",
    "STEPS": "diffseg30k.experiments.steps",
    "PaperTable": "diffseg30k.experiments.tables",
    "TABLES": "diffseg30k.experiments.tables",
    "register_table": "diffseg30k.experiments.tables",
    "write_report": "diffseg30k.experiments.report",
})
