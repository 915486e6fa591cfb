"""Two-dimensional datasets drawn as the TensorFlow neural network playground draws them.

Each generator takes ``(n_samples, noise, rng)`` and returns ``(X, y)``; the
classification labels are 0/1 (the playground's -1/+1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["GENERATORS", "REGRESSION_GENERATORS"]


def circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    half = n // 2
    r = np.concatenate([rng.uniform(0, radius * 0.5, half), rng.uniform(radius * 0.7, radius, n - half)])
    angle = rng.uniform(0, 2 * np.pi, n)
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    jitter = rng.uniform(-radius, radius, (n, 2)) * noise
    y = (np.hypot(*(X + jitter).T) < radius * 0.5).astype(np.int64)
    return X, y


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-5, 5, (n, 2))
    X += np.where(X > 0, 0.3, -0.3)
    jitter = rng.uniform(-5, 5, (n, 2)) * noise
    p = X + jitter
    y = (p[:, 0] * p[:, 1] >= 0).astype(np.int64)
    return X, y


def gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    std = np.sqrt(0.5 + 7.0 * noise)
    half = n // 2
    pos = rng.normal((2.0, 2.0), std, (half, 2))
    neg = rng.normal((-2.0, -2.0), std, (n - half, 2))
    y = np.concatenate([np.ones(half, np.int64), np.zeros(n - half, np.int64)])
    return np.vstack([pos, neg]), y


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    parts, labels = [], []
    for count, delta, label in ((half, 0.0, 1), (n - half, np.pi, 0)):
        i = np.arange(count)
        r = i / count * 5.0
        t = 1.75 * i / count * 2 * np.pi + delta
        pts = np.column_stack([r * np.sin(t), r * np.cos(t)])
        pts += rng.uniform(-1, 1, (count, 2)) * noise
        parts.append(pts)
        labels.append(np.full(count, label, np.int64))
    return np.vstack(parts), np.concatenate(labels)


def plane(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-6, 6, (n, 2))
    p = X + rng.uniform(-6, 6, (n, 2)) * noise
    return X, (p[:, 0] + p[:, 1]) / 10.0


_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], float)


def multigauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-6, 6, (n, 2))
    p = X + rng.uniform(-6, 6, (n, 2)) * noise
    dist = np.hypot(p[:, None, 0] - _BUMPS[:, 0], p[:, None, 1] - _BUMPS[:, 1])
    # The playground's label scale: distance 0 -> 1, distance >= 2 -> 0; the strongest bump wins.
    signed = _BUMPS[:, 2] * np.clip(1.0 - dist / 2.0, 0.0, 1.0)
    pick = np.abs(signed).argmax(axis=1)
    return X, signed[np.arange(n), pick]


Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]

GENERATORS: dict[str, Generator] = {"circle": circle, "gauss": gauss, "spiral": spiral, "xor": xor}
REGRESSION_GENERATORS: dict[str, Generator] = {"multigauss": multigauss, "plane": plane}
