"""Engine against scikit-learn's MLPClassifier, side by side in one process.

Same split, architecture (64, 64), relu, adam, batch 200, 50 epochs, on digits
and on a generated 20,000 x 20 set. Prints each one's median wall time over
``--repeats`` runs, the ratio, and each one's test accuracy.

    python benchmarks/engine_vs_sklearn.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from engine import MLP, from_arrays, load_dataset, train


def _generated(seed: int = 0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=20_000, n_features=20, n_informative=12, n_classes=4, random_state=seed)
    return from_arrays(X, y, name="generated-20000x20", seed=seed)


def run_engine(ds, *, epochs: int, seed: int, init: str = "glorot") -> tuple[float, float]:
    t0 = time.perf_counter()
    model = MLP(ds.n_features, (64, 64), ds.n_outputs, activation="relu", seed=seed, init=init)
    train(model, ds, learning_rate=1e-3, epochs=epochs, batch_size=200, optimizer="adam", seed=seed)
    elapsed = time.perf_counter() - t0
    return elapsed, float(np.mean(model.predict(ds.X_test) == ds.y_test))


def run_sklearn(ds, *, epochs: int, seed: int) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(64, 64),
        activation="relu",
        solver="adam",
        batch_size=200,
        learning_rate_init=1e-3,
        max_iter=epochs,
        alpha=0.0,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        shuffle=True,
        random_state=seed,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(ds.X_train, ds.y_train)
    elapsed = time.perf_counter() - t0
    return elapsed, float(clf.score(ds.X_test, ds.y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--init", default="glorot", help="engine init: glorot (as scikit-learn's MLP), he or auto")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i['internal_api']} {i.get('version')} {i.get('architecture')} ({i['num_threads']} threads)"
            for i in threadpool_info()
        )
    except ImportError:  # pragma: no cover
        blas = "unknown"
    print(f"BLAS: {blas}; engine init: {args.init}")
    print(f"{'dataset':22} {'engine s':>9} {'sklearn s':>10} {'speed-up':>9} {'engine acc':>11} {'sklearn acc':>12}")
    for ds in (load_dataset("digits", seed=0), _generated()):
        ours, theirs, acc_o, acc_t = [], [], [], []
        for r in range(args.repeats):
            # Alternate who goes first so that neither always meets a warm or a cold cache.
            pair = [(run_engine, ours, acc_o), (run_sklearn, theirs, acc_t)]
            for fn, times, accs in pair if r % 2 == 0 else pair[::-1]:
                extra = {"init": args.init} if fn is run_engine else {}
                t, a = fn(ds, epochs=args.epochs, seed=r, **extra)
                times.append(t)
                accs.append(a)
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(
            f"{ds.name:22} {mo:9.3f} {mt:10.3f} {mt / mo:8.2f}x "
            f"{statistics.median(acc_o):11.4f} {statistics.median(acc_t):12.4f}"
        )


if __name__ == "__main__":
    main()
