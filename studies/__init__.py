"""The search floor: Optuna studies over the engine, joblib workers, storage, MLflow tracking.

Packages, each with a public face (its ``__init__``), in layers (a package imports only from
those listed before it; ``tests/test_layers.py`` checks it):

- :mod:`studies.storage`: opening any Optuna storage, the batched adaptor, the journal file,
  leases, redaction of passwords.
- :mod:`studies.sweep`: what a sweep is (configuration, search space, objectives, outcomes,
  curves, data signatures, summaries).
- :mod:`studies.search`: one trial, stacked trials, samplers and pruners, totals, warm starts,
  retraining a recorded trial.
- :mod:`studies.reports`: the research report and its figures.
- :mod:`studies.tracking`: MLflow as a view of the storage.
- :mod:`studies.execution`: running a sweep (launcher, workers, recovery, stop signals).

Beside them: :mod:`studies.errors` (the error family), :mod:`studies.hooks` (test hooks), and
the private :mod:`studies._optuna_compat` (Optuna's private names, each behind a guard test).
"""
