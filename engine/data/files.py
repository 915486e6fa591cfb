"""Users' dataset files, read without pickle and checked before they are loaded: a CSV (header
row, a label column) or an .npz (arrays ``X`` and ``y``). A file too large for the machine
is refused from its size (CSV) or its array headers (.npz) before any of it is read.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import csv
import io
import math
import operator
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from engine.errors import SweepsError
from engine.limits import DATA_COPIES, check_memory, human_bytes, machine_memory

__all__ = ["FILE_SUFFIXES", "PROGRESS_BYTES", "read_file", "reading", "write_atomic"]

FILE_SUFFIXES = (".csv", ".npz")
# Memory per byte of a CSV file while it is read: it is read in chunks of about a million
# cells, so what counts is the float64 copies (DATA_COPIES of 8 bytes for a cell of 2 bytes, "1,").
_CSV_BYTES_PER_BYTE = 4 * DATA_COPIES
_CHUNK_CELLS = 1_000_000
_PLAIN_CHUNK_BYTES = 8 * 1024 * 1024
# Files from this size on report their progress while they load (a few seconds of reading).
PROGRESS_BYTES = 4 * 1024 * 1024
# The most classes a numeric label column may have to be read as classes (the engine's rule).
_MAX_CLASSES = 50
_watcher: contextvars.ContextVar[Callable[[str, int, int, int], None] | None] = contextvars.ContextVar(
    "csv_watcher", default=None
)


def read_file(path: Path, *, label: str | None = None, task: str | None = None):
    """The file's (X, y, feature names, class names, task, label name)."""
    if not path.is_file():
        where = "" if path.is_absolute() else f", relative to the current folder {os.getcwd()!r}"
        raise SweepsError(f"dataset file {str(path)!r} does not exist (looked for {str(path.absolute())!r}{where}).")
    if path.suffix.lower() == ".npz":
        if label is not None:
            raise SweepsError(f"dataset {str(path)!r}: option 'label' applies to CSV files only.")
        return (*_read_npz(path), task, "y")
    X, y, features, classes, name = _read_csv(path, label, task)
    return X, y, features, classes, task, name


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


def _read_csv(path: Path, label: str | None, task: str | None):
    size = path.stat().st_size
    check_memory(
        f"dataset {str(path)!r} (a CSV file of {human_bytes(size)})",
        size * _CSV_BYTES_PER_BYTE,
        advice=f"; a CSV file may have at most {human_bytes(machine_memory() / _CSV_BYTES_PER_BYTE)}: "
        f"save large data as .npz",
    )
    fast = _read_plain(path, label, size)
    X, y, header, label_col = fast if fast is not None else _read_careful(path, label, size)
    if label is None and task in (None, "auto"):
        _check_label_guess(path, header, X, y)
    return X, y, tuple(h for i, h in enumerate(header) if i != label_col), None, header[label_col]


def _read_plain(path: Path, label: str | None, size: int):
    """A plain numeric CSV (no quotes, every cell a finite number, labels too), read by
    NumPy's C parser in chunks of about :data:`_PLAIN_CHUNK_BYTES`, about 3x as fast as
    :func:`_read_careful`. ``None`` for anything else: the careful reader then reads the file
    and names what is wrong, with its line."""
    try:
        with path.open("rb") as fh:
            first = fh.readline().removeprefix(codecs.BOM_UTF8).decode("utf-8")
            if '"' in first or not first.strip():
                return None
            header, label_col = _header(path, first.rstrip("\r\n").split(","), label)
            parts: list[np.ndarray] = []
            rows = 0
            while buf := fh.read(_PLAIN_CHUNK_BYTES):
                buf += fh.readline()
                if b'"' in buf:
                    return None
                part = np.loadtxt(
                    io.BytesIO(buf), delimiter=",", comments=None, dtype=np.float64, ndmin=2, encoding="utf-8"
                )
                if part.shape[1] != len(header) or not np.isfinite(part).all():
                    return None
                parts.append(part)
                rows += len(part)
                _report(path, rows, fh.tell(), size)
    except (ValueError, UnicodeDecodeError):
        return None
    if not rows:
        return None
    table = np.concatenate(parts) if len(parts) > 1 else parts[0]
    X = np.delete(table, label_col, axis=1)  # a copy: the label's column is not kept twice
    return X, table[:, label_col].copy(), header, label_col


def _read_careful(path: Path, label: str | None, size: int):
    """Any CSV, with the csv module (quotes, blank lines), chunk by chunk; its errors name the line."""
    try:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            first = next((row for row in reader if any(cell.strip() for cell in row)), None)
            header, label_col = _header(path, first, label)
            table = _Table(path, header, label_col)
            chunk: list[list[str]] = []
            lines: list[int] = []
            every = max(1, _CHUNK_CELLS // len(header))
            for row in reader:
                if row and (row[0].strip() or any(cell.strip() for cell in row)):  # blank lines skipped
                    if len(row) != len(header):
                        raise SweepsError(
                            f"dataset {str(path)!r}: line {reader.line_num} has {len(row)} fields, but the header "
                            f"has {len(header)}."
                        )
                    chunk.append(row)
                    lines.append(reader.line_num)
                    if len(chunk) == every:
                        table.add(chunk, lines)
                        chunk, lines = [], []
                        _report(path, table.rows, raw.tell(), size)
            table.add(chunk, lines)
    except UnicodeDecodeError:
        raise SweepsError(f"dataset {str(path)!r}: not a UTF-8 text CSV file.") from None
    except csv.Error as exc:
        raise SweepsError(f"dataset {str(path)!r}: malformed CSV ({exc}).") from None
    X, y = table.arrays()
    return X, y, header, label_col


def _header(path: Path, first: list[str] | None, label: str | None) -> tuple[list[str], int]:
    """The header's column names and the label's column."""
    if first is None:
        raise SweepsError(f"dataset {str(path)!r}: a CSV needs a header row and at least one data row.")
    header = [h.strip() for h in first]
    if len(header) < 2:
        raise SweepsError(
            f"dataset {str(path)!r}: a CSV needs at least one feature column and a label column, but the "
            f"header has {len(header)} column(s)."
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            raise SweepsError(
                f"dataset {str(path)!r}: column {i + 1} of the header has no name; every column needs a unique name."
            )
        if name in seen:
            raise SweepsError(
                f"dataset {str(path)!r}: column name {name!r} appears twice (columns {seen[name] + 1} and "
                f"{i + 1}); every column needs a unique name."
            )
        seen[name] = i
    if label is None:
        return header, len(header) - 1
    if label in header:
        return header, header.index(label)
    raise SweepsError(f"dataset {str(path)!r}: 'label' must be one of the columns {sorted(header)}, but got {label!r}.")


class _Table:
    """A CSV's rows, turned into float64 features chunk by chunk (never a Python string per
    cell of the whole file), and its label column's raw values."""

    def __init__(self, path: Path, header: list[str], label_col: int) -> None:
        self.path, self.header, self.label_col = path, header, label_col
        self.cols = [i for i in range(len(header)) if i != label_col]
        self.features = [header[i] for i in self.cols]
        self.parts: list[np.ndarray] = []
        self.labels: list[str] = []
        self.first_line = 0
        self.rows = 0

    def add(self, chunk: list[list[str]], lines: list[int]) -> None:
        if not chunk:
            return
        self.first_line = self.first_line or lines[0]
        pick = operator.itemgetter(*self.cols) if len(self.cols) > 1 else (lambda row: (row[self.cols[0]],))
        try:  # float() takes surrounding blanks, as the file may have them; numpy's own parse is slower
            X = np.array([tuple(map(float, pick(row))) for row in chunk], dtype=np.float64)
        except ValueError:
            X = self._slowly(np.array([pick(row) for row in chunk], dtype=str), lines)  # says which cell is wrong
        bad = ~np.isfinite(X)
        if bad.any():
            j, r = np.argwhere(bad.T)[0]
            raise SweepsError(
                f"dataset {str(self.path)!r}: feature column {self.features[j]!r} has a missing or infinite value "
                f"on line {lines[r]}."
            )
        for row, line in zip(chunk, lines):
            value = row[self.label_col].strip()
            if not value:
                raise SweepsError(
                    f"dataset {str(self.path)!r}: label column {self.header[self.label_col]!r} has an empty value "
                    f"on line {line}."
                )
            self.labels.append(value)
        self.parts.append(X)
        self.rows += len(chunk)

    def _slowly(self, cells: np.ndarray, lines: list[int]) -> np.ndarray:
        X = np.empty(cells.shape)
        for j, fname in enumerate(self.features):
            for r in range(len(cells)):
                cell = str(cells[r, j]).strip()
                if not cell:
                    raise SweepsError(
                        f"dataset {str(self.path)!r}: feature column {fname!r} has a missing value on line {lines[r]}."
                    )
                try:
                    X[r, j] = float(cell)
                except ValueError:
                    raise SweepsError(
                        f"dataset {str(self.path)!r}: feature column {fname!r} is not numeric (line {lines[r]} "
                        f"has {cell!r})."
                    ) from None
        return X

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.rows:
            raise SweepsError(f"dataset {str(self.path)!r}: a CSV needs a header row and at least one data row.")
        X = np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]
        try:
            y = np.array([float(v) for v in self.labels])
        except ValueError:
            y = np.array(self.labels)
        return X, y


def _classes_like(values: np.ndarray) -> int:
    """How many distinct values a numeric column holds if they look like class labels
    (integers, at least 2 and at most :data:`_MAX_CLASSES` of them, each twice on average:
    not a row number), else 0."""
    if not np.all(values == np.round(values)):
        return 0
    n = len(np.unique(values))
    return n if 2 <= n <= min(_MAX_CLASSES, len(values) // 2) else 0


def _check_label_guess(path: Path, header: list[str], X: np.ndarray, y: np.ndarray) -> None:
    """No 'label' given: the last column is it. Refuse when that makes a continuous last column
    a regression target while the first column holds class labels (a label written first)."""
    if y.dtype.kind != "f" or not X.shape[1]:
        return
    integral = bool(np.all(y == np.round(y)))
    if (integral and len(np.unique(y)) <= _MAX_CLASSES) or not _classes_like(X[:, 0]):
        return  # the last column is read as classes (the engine's rule), or the first is no label
    first, last = header[0], header[-1]
    raise SweepsError(
        f"dataset {str(path)!r}: which column is the label? Without 'label' it is the last, {last!r}, "
        f"continuous (a regression target), but the first, {first!r}, holds {_classes_like(X[:, 0])} integer "
        f'values like class labels; say label = "{first}" (classification) or label = "{last}" (regression).'
    )


def _report(path: Path, rows: int, done: int, size: int) -> None:
    """Tell the reader's watcher how far a large file is (see :func:`reading`)."""
    watcher = _watcher.get()
    if watcher is not None and size >= PROGRESS_BYTES:
        watcher(str(path), rows, done, size)


@contextlib.contextmanager
def reading(watcher: Callable[[str, int, int, int], None]) -> Iterator[None]:
    """While inside, CSV files of at least :data:`PROGRESS_BYTES` report as they load:
    ``watcher(path, rows read, bytes read, file size)``, about every million cells."""
    token = _watcher.set(watcher)
    try:
        yield
    finally:
        _watcher.reset(token)


def write_atomic(path: str, data: bytes | str) -> str:
    """Write ``data`` (text is UTF-8) to ``path`` through a temporary file renamed into place: a
    crash leaves no half file; a symbolic link at ``path`` is replaced, never written through; the
    file gets the user's umask. Returns ``path``.

    Raises:
        SweepsError: ``path`` is a folder, a device, a pipe or a socket (never replaced), or the
            write failed (a full disk, no permission: said why); a file at ``path`` is left as it was.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path) and not os.path.islink(path):
        raise SweepsError(f"can't write {path!r}: it is a folder.")
    with contextlib.suppress(OSError):
        if not stat.S_ISREG(os.lstat(path).st_mode) and not os.path.islink(path):
            raise SweepsError(f"can't write {path!r}: it is not a regular file (a device, a pipe or a socket).")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as exc:
        raise SweepsError(f"can't write {path!r} ({exc.strerror}).") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces a link at ``path`` itself, never its target
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, say: the old file, if any, is still whole
            raise SweepsError(f"can't write {path!r} ({exc.strerror}).") from None
        raise
    with contextlib.suppress(OSError):  # the rename to disk (a power loss could forget it)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
