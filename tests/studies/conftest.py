from __future__ import annotations

import pytest

SPEC = """
name = "{name}"
datasets = ["circle", "xor"]
trials = {trials}
jobs = {jobs}
seed = 0
objective = "val_cost"

[train]
epochs = {epochs}
batch_size = 10
activation = "relu"

[search]
learning_rate = [0.1, 80.0]
hidden_layers = {{ low = 1, high = 2 }}
hidden_units = {{ low = 2, high = 6 }}
regularization = ["none", "l2"]
regularization_rate = {{ low = 1e-5, high = 1e-2, log = true }}

[sampler]
name = "random"

[pruner]
name = "none"
"""


@pytest.fixture
def sweep_file(tmp_path, monkeypatch):
    """Write a small sweep file in a fresh working directory; returns a function of its fields."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def make(name: str = "e2e", *, trials: int = 12, jobs: int = 2, epochs: int = 4):
        path = tmp_path / f"{name}.toml"
        path.write_text(SPEC.format(name=name, trials=trials, jobs=jobs, epochs=epochs))
        return path

    return make
