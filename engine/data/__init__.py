"""Datasets: the playground's generated sets, scikit-learn's bundled ones, users' CSV and .npz
files (read without pickle), split and standardized by a seed, and their input features."""

from engine.data.datasets import DATASETS, TASKS, Dataset, dataset_name, from_arrays, load_dataset, with_features
from engine.data.features import FEATURES, MAX_PRODUCT_FEATURES, check_features
from engine.data.files import reading

__all__ = [
    "DATASETS",
    "FEATURES",
    "MAX_PRODUCT_FEATURES",
    "TASKS",
    "Dataset",
    "check_features",
    "dataset_name",
    "from_arrays",
    "load_dataset",
    "reading",
    "with_features",
]
