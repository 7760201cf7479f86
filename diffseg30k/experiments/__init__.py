"""Experiments: the paper's tables from one command, and scoring that can be redone without a model.

- :mod:`~diffseg30k.experiments.evaluation`  run a detector over a split under distortions, save and score
- :mod:`~diffseg30k.experiments.predictions` prediction sets on disk (label maps, references, scores)
- :mod:`~diffseg30k.experiments.scoring`     headline metrics, breakdowns, bootstrap CIs (via DiffSegMetric)
- :mod:`~diffseg30k.experiments.baselines`   CNNSpot / UniversalFakeDetect training and scoring
- :mod:`~diffseg30k.experiments.plan`        resumable plans of named steps
- :mod:`~diffseg30k.experiments.config`      the ``quick`` and ``paper`` benchmark configurations
- :mod:`~diffseg30k.experiments.benchmark`   the benchmark's steps (data, Tab. 2-8, figures)
- :mod:`~diffseg30k.experiments.report`      report.md / results.json / evaluation.md
- :mod:`~diffseg30k.experiments.figures`     Fig. 5 confusion matrices, Fig. 6 grids (PNG)
- :mod:`~diffseg30k.experiments.reference`   the paper's numbers, in one place
"""
