"""Training learns, stops at divergence, honours the epoch hook, and is deterministic."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from engine import MLP, OPTIMIZERS, load_dataset, train


def _fit(name, hidden, *, activation="tanh", lr=0.03, epochs=100, batch=10, optimizer="sgd", seed=0, **kw):
    ds = load_dataset(name, seed=seed)
    model = MLP(ds.n_features, hidden, ds.n_outputs, activation=activation, seed=seed)
    return (
        ds,
        model,
        train(model, ds, learning_rate=lr, epochs=epochs, batch_size=batch, optimizer=optimizer, seed=seed, **kw),
    )


@pytest.mark.parametrize("name", ["xor", "circle"])
def test_playground_sets_are_learned(name):
    _, _, h = _fit(name, (8, 8), activation="tanh", lr=0.03, epochs=100)
    assert h.divergence is None
    assert h.val_accuracy[-1] >= 0.95
    assert h.train_cost[-1] < h.initial_cost / 4


def test_logistic_regression_matches_scikit_learn_on_breast_cancer():
    from sklearn.linear_model import LogisticRegression

    ds = load_dataset("breast_cancer", seed=0)
    model = MLP(ds.n_features, (), 1, seed=0)
    train(model, ds, learning_rate=0.01, epochs=200, batch_size=32, optimizer="adam", l2=1e-3, seed=0)
    ours = float(np.mean(model.predict(ds.X_test) == ds.y_test))
    ref = LogisticRegression(max_iter=5000).fit(ds.X_train, ds.y_train).score(ds.X_test, ds.y_test)
    assert abs(ours - ref) <= 0.015, (ours, ref)


@pytest.mark.slow
def test_mlp_on_digits_reaches_95_percent_test_accuracy():
    ds, model, h = _fit("digits", (64,), activation="relu", lr=1e-3, epochs=60, batch=32, optimizer="adam")
    assert float(np.mean(model.predict(ds.X_test) == ds.y_test)) >= 0.95


def test_regression_learns_the_plane():
    _, model, h = _fit("plane", (4,), activation="tanh", lr=0.01, epochs=30)
    assert not h.val_accuracy and len(h.val_r2) == 30
    assert h.val_r2[-1] > 0.98


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_lowers_the_cost(optimizer):
    lr = 0.01 if optimizer == "adam" else 0.05
    _, _, h = _fit("gauss", (4,), lr=lr, epochs=5, optimizer=optimizer)
    assert h.val_cost[-1] < h.initial_cost


def test_nesterov_differs_from_plain_momentum():
    a = _fit("xor", (4,), epochs=3, optimizer="momentum")[2]
    b = _fit("xor", (4,), epochs=3, optimizer="momentum", nesterov=True)[2]
    assert a.train_cost != b.train_cost


def test_huge_learning_rate_diverges_within_the_first_epochs_and_stops():
    ds, model, h = _fit("circle", (8, 8), activation="relu", lr=50.0, epochs=100)
    d = h.divergence
    assert d is not None
    assert d.epoch <= 3
    assert d.cause in ("nan", "inf", "exploding")
    assert np.isfinite(d.last_finite_cost)
    assert h.epochs == d.epoch - 1  # the diverging epoch is not recorded as finished
    assert d.step >= 1


def test_nan_divergence_is_named_nan():
    ds = load_dataset("xor", seed=0)
    model = MLP(2, (4,), 1, activation="tanh", seed=0)
    model.weights[0][0, 0] = np.nan
    h = train(model, ds, learning_rate=0.1, epochs=5, batch_size=10)
    assert h.divergence is not None and h.divergence.cause == "nan" and h.divergence.step == 1


def test_exploding_threshold_is_configurable():
    # The same run, judged against a tighter multiple of the untrained cost, diverges earlier.
    loose = _fit("circle", (8,), activation="relu", lr=5.0, epochs=20, divergence_factor=1e6)[2]
    tight = _fit("circle", (8,), activation="relu", lr=5.0, epochs=20, divergence_factor=1.5)[2]
    assert tight.divergence is not None and tight.divergence.cause == "exploding"
    assert loose.divergence is None or loose.divergence.step > tight.divergence.step


def test_on_epoch_can_stop_training():
    seen = []

    def hook(epoch, history):
        seen.append((epoch, history.epochs))
        return epoch < 3

    _, _, h = _fit("xor", (4,), epochs=50, on_epoch=hook)
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert h.stopped_early and h.epochs == 3


def test_history_shapes():
    _, _, h = _fit("iris", (5,), epochs=7, batch=16)
    assert len(h.train_cost) == len(h.val_cost) == len(h.val_accuracy) == len(h.epoch_time) == 7
    assert all(0.0 <= a <= 1.0 for a in h.val_accuracy)
    assert h.to_dict()["divergence"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, "'learning_rate' must be a number > 0"),
        ({"learning_rate": float("nan")}, "'learning_rate' must be"),
        ({"epochs": 0}, "'epochs' must be an integer >= 1"),
        ({"batch_size": 2.5}, "'batch_size' must be an integer >= 1"),
        ({"l2": -1.0}, "'l2' must be a number >= 0"),
        ({"optimizer": "rmsprop"}, r"'optimizer' must be one of \['adam', 'momentum', 'sgd'\], but got 'rmsprop'"),
    ],
)
def test_bad_training_arguments(kwargs, message):
    ds = load_dataset("xor")
    args = {"learning_rate": 0.1, "epochs": 1, "batch_size": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        train(MLP(2, (), 1), ds, **args)


def test_model_must_fit_the_dataset():
    ds = load_dataset("iris")
    with pytest.raises(ValueError, match="needs 3 output units"):
        train(MLP(4, (), 1), ds, learning_rate=0.1, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="has 2 inputs but dataset 'iris' has 4 features"):
        train(MLP(2, (), 3), ds, learning_rate=0.1, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="does not fit the multiclass dataset"):
        train(MLP(4, (), 3, output="identity"), ds, learning_rate=0.1, epochs=1, batch_size=10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"activation": "gelu"},
            r"'activation' must be one of \['linear', 'relu', 'sigmoid', 'tanh'\], but got 'gelu'",
        ),
        ({"output": "softplus"}, r"'output' must be one of \['identity', 'sigmoid', 'softmax'\]"),
        ({"init": "lecun"}, r"'init' must be one of \['auto', 'glorot', 'he'\]"),
    ],
)
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(2, (3,), 1, **kwargs)


def test_bad_sizes():
    with pytest.raises(ValueError, match="'hidden_sizes' must be an integer >= 1, but got 0"):
        MLP(2, (3, 0), 1)
    with pytest.raises(ValueError, match="a sigmoid output has one unit"):
        MLP(2, (), 2, output="sigmoid")


_SCRIPT = """
import json, numpy as np
from engine import MLP, load_dataset, train
ds = load_dataset("spiral", seed=3, noise=0.2)
m = MLP(2, (8, 8), 1, activation="relu", seed=3)
h = train(m, ds, learning_rate=0.05, epochs=5, batch_size=10, optimizer="adam", l2=1e-3, seed=3)
print(json.dumps({"h": [x.hex() for x in h.train_cost + h.val_cost + h.val_accuracy],
                  "w": [float(v).hex() for v in np.concatenate([p.ravel() for p in m.params])]}))
"""


def test_bit_identical_across_processes():
    runs = [
        subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True) for _ in range(2)
    ]
    a, b = (json.loads(r.stdout) for r in runs)
    assert a == b
    assert len(a["h"]) == 15


@pytest.mark.parametrize("stacked", [False, True])
def test_the_slow_epoch_test_hook_sleeps_after_each_epoch_and_nothing_when_unset(monkeypatch, stacked):
    """SWEEPS_TEST_SLOW_EPOCH (studies/hooks.py's EPOCH step) lets tests catch a run mid-training
    without epoch counts as timers; unset, training never sleeps."""
    import time

    from engine import Member, train_stacked

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    ds = load_dataset("xor", seed=0)

    def run(epochs: int) -> None:
        if stacked:
            train_stacked([Member((4,), 0.1), Member((3,), 0.1)], ds, activation="tanh", epochs=epochs, batch_size=10)
        else:
            model = MLP(ds.n_features, (4,), ds.n_outputs, activation="tanh", seed=0)
            train(model, ds, learning_rate=0.1, epochs=epochs, batch_size=10, seed=0)

    monkeypatch.delenv("SWEEPS_TEST_SLOW_EPOCH", raising=False)
    run(3)
    assert slept == []
    monkeypatch.setenv("SWEEPS_TEST_SLOW_EPOCH", "0.25")
    run(4)
    assert slept == [0.25] * 4  # one pause per epoch (a stack's epoch trains all its members at once)
