"""Users' dataset files, read without pickle and checked before they are loaded: a CSV (header
row, a label column) or an .npz (arrays ``X`` and ``y``). A file too large for the machine
is refused from its size (CSV) or its array headers (.npz) before any of it is read.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from engine.errors import SweepsError
from engine.limits import DATA_COPIES, check_memory, human_bytes, machine_memory

__all__ = ["FILE_SUFFIXES", "read_file"]

FILE_SUFFIXES = (".csv", ".npz")
# Memory per byte of a CSV file while it is read: a Python string per cell (a 2-byte cell
# such as "1," costs about 60 bytes), then the float64 copies.
_CSV_BYTES_PER_BYTE = 40


def read_file(path: Path, *, label: str | None = None, task: str | None = None):
    if not path.is_file():
        raise SweepsError(f"dataset file {str(path)!r} does not exist.")
    if path.suffix.lower() == ".npz":
        if label is not None:
            raise SweepsError(f"dataset {str(path)!r}: option 'label' applies to CSV files only.")
        return (*_read_npz(path), task)
    return (*_read_csv(path, label), task)


def _npz_header(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype of array ``name`` of an .npz file, read from its header alone (None if
    the header can't be read this way: ``np.load`` then says what is wrong)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                return None
            shape, _, dtype = read[version](fh)
            return shape, dtype
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError):
        return None


def _check_npz(path: Path) -> None:
    """Refuse complex arrays and arrays too large for the machine, before loading them."""
    need = raw = 0
    for name in ("X", "y"):
        header = _npz_header(path, name)
        if header is None:
            continue
        shape, dtype = header
        if dtype.kind == "c":
            raise SweepsError(f"dataset {str(path)!r}: {name} must hold real numbers, but got dtype {dtype}.")
        raw += math.prod(shape) * dtype.itemsize
        need += math.prod(shape) * (dtype.itemsize + DATA_COPIES * 8)
    check_memory(f"dataset {str(path)!r} (arrays of {human_bytes(raw)})", need)


def _read_npz(path: Path):
    _check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = sorted({"X", "y"} - set(data.files))
            if missing:
                raise SweepsError(
                    f"dataset {str(path)!r}: an .npz file needs arrays 'X' and 'y', but {missing[0]!r} is "
                    f"missing (found {sorted(data.files)})."
                )
            X, y = data["X"], data["y"]
    except ValueError as exc:
        if "dataset" in str(exc):
            raise
        raise SweepsError(f"dataset {str(path)!r}: cannot read it as an .npz of plain arrays ({exc}).") from None
    except (OSError, EOFError) as exc:
        raise SweepsError(f"dataset {str(path)!r}: not a readable .npz file ({exc}).") from None
    return X, y, None, None


def _read_csv(path: Path, label: str | None):
    size = path.stat().st_size
    check_memory(
        f"dataset {str(path)!r} (a CSV file of {human_bytes(size)})",
        size * _CSV_BYTES_PER_BYTE,
        advice=f"; a CSV file may have at most {human_bytes(machine_memory() / _CSV_BYTES_PER_BYTE)}: "
        f"save large data as .npz",
    )
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows, lines = [], []  # the non-blank rows, and each one's line in the file (blank lines skipped)
            reader = csv.reader(fh)
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise SweepsError(f"dataset {str(path)!r}: not a UTF-8 text CSV file.") from None
    except csv.Error as exc:
        raise SweepsError(f"dataset {str(path)!r}: malformed CSV ({exc}).") from None
    if len(rows) < 2:
        raise SweepsError(f"dataset {str(path)!r}: a CSV needs a header row and at least one data row.")
    header = [h.strip() for h in rows[0]]
    if len(header) < 2:
        raise SweepsError(
            f"dataset {str(path)!r}: a CSV needs at least one feature column and a label column, but the "
            f"header has {len(header)} column(s)."
        )
    for lineno, row in zip(lines[1:], rows[1:]):
        if len(row) != len(header):
            raise SweepsError(
                f"dataset {str(path)!r}: line {lineno} has {len(row)} fields, but the header has {len(header)}."
            )
    if label is None:
        label_col = len(header) - 1
    elif label in header:
        label_col = header.index(label)
    else:
        raise SweepsError(
            f"dataset {str(path)!r}: 'label' must be one of the columns {sorted(header)}, but got {label!r}."
        )
    features = [h for i, h in enumerate(header) if i != label_col]
    cols = [i for i in range(len(header)) if i != label_col]
    X = np.empty((len(rows) - 1, len(cols)))
    for j, (col, fname) in enumerate(zip(cols, features)):
        for r, row in enumerate(rows[1:]):
            cell = row[col].strip()
            if not cell:
                raise SweepsError(
                    f"dataset {str(path)!r}: feature column {fname!r} has a missing value on line {lines[r + 1]}."
                )
            try:
                X[r, j] = float(cell)
            except ValueError:
                raise SweepsError(
                    f"dataset {str(path)!r}: feature column {fname!r} is not numeric (line {lines[r + 1]} "
                    f"has {cell!r})."
                ) from None
            if not math.isfinite(X[r, j]):
                raise SweepsError(
                    f"dataset {str(path)!r}: feature column {fname!r} has a missing or infinite value on "
                    f"line {lines[r + 1]}."
                )
    raw = [row[label_col].strip() for row in rows[1:]]
    if any(v == "" for v in raw):
        raise SweepsError(
            f"dataset {str(path)!r}: label column {header[label_col]!r} has an empty value on line "
            f"{lines[raw.index('') + 1]}."
        )
    try:
        y = np.array([float(v) for v in raw])
    except ValueError:
        y = np.array(raw)
    return X, y, tuple(features), None
