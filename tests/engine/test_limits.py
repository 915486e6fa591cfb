"""What the machine can hold: refused before anything is allocated, with the limit and the
value in the message; and the stacked engine's memory does not grow with epochs."""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile

import numpy as np
import pytest

from engine import MLP, Member, Stack, load_dataset, train
from engine.limits import human_bytes, largest, machine_memory, mlp_bytes, stack_bytes, train_bytes
from engine.optimizers import Adam

MEMORY = re.escape(human_bytes(machine_memory()))


def test_machine_memory_is_the_physical_memory_or_less():
    import os

    assert 0 < machine_memory() <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(10) == "10 bytes" and human_bytes(3 * 2**40) == "3.0 TiB"


def test_estimates_grow_with_the_shapes_and_largest_inverts_them():
    assert mlp_bytes((2, 8, 1), 4) == 2 * (2 * 8 + 8 + 8 * 1 + 1) * 4 + 8 * 16
    assert train_bytes((2, 8, 1), 4, n_train=300, n_val=100) > mlp_bytes((2, 8, 1), 4)
    one = stack_bytes(1, 8, 2, 1, members=1, n_train=300, n_val=100)
    assert stack_bytes(1, 8, 2, 1, members=4, n_train=300, n_val=100) == 4 * one
    assert (
        stack_bytes(2, 8, 2, 1, members=1, n_train=300, n_val=100)
        > one
        > stack_bytes(0, 8, 2, 1, members=1, n_train=300, n_val=100)
    )
    width = largest(lambda w: stack_bytes(2, w, 2, 1, members=8, n_train=300, n_val=100), 10**9)
    assert stack_bytes(2, width, 2, 1, members=8, n_train=300, n_val=100) <= machine_memory()
    assert stack_bytes(2, width + 1, 2, 1, members=8, n_train=300, n_val=100) > machine_memory()


def _peak(call) -> int:
    tracemalloc.start()
    try:
        call()
    except ValueError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_a_generated_dataset_too_large_is_refused_before_it_is_drawn():
    with pytest.raises(
        ValueError,
        match=rf"dataset 'circle': 'n_samples' = 10000000000 needs about .* of memory, "
        rf"but this machine has {MEMORY}; at most about [\d,]+ rows fit\.",
    ):
        load_dataset("circle", n_samples=10**10)
    assert _peak(lambda: load_dataset("spiral", n_samples=10**12)) < 2**20


def _header_only_npz(path, shape, dtype="<f8") -> None:
    """An .npz whose X claims ``shape`` (no data): what its header says is all that is read."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    y = io.BytesIO()
    np.save(y, np.arange(10) % 2)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", header.getvalue())
        zf.writestr("y.npy", y.getvalue())


def test_npz_too_large_or_complex_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.npz"
    _header_only_npz(path, (10**9, 100))
    with pytest.raises(
        ValueError, match=rf"huge.npz' \(arrays of 745.1 GiB\) needs about .* but this machine has {MEMORY}"
    ):
        load_dataset(str(path))
    assert _peak(lambda: load_dataset(str(path))) < 2**20
    _header_only_npz(path, (10, 2), dtype="<c16")
    with pytest.raises(ValueError, match=r"X must hold real numbers, but got dtype complex128"):
        load_dataset(str(path))


@pytest.mark.parametrize("which", ["X", "y"])
def test_complex_arrays_are_refused_not_cast(tmp_path, which):
    arrays = {"X": np.ones((20, 2)), "y": np.arange(20) % 2}
    arrays[which] = arrays[which] + 0.5j
    np.savez(tmp_path / "c.npz", **arrays)
    with pytest.raises(ValueError, match=rf"{which} must hold real numbers.*complex128"):
        load_dataset(str(tmp_path / "c.npz"))


def test_a_csv_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from engine.data import files as datafiles

    path = tmp_path / "big.csv"
    path.write_text("a,b\n1,0\n2,1\n" * 10)
    # As if each byte of the file cost the whole machine: the size alone decides.
    monkeypatch.setattr(datafiles, "_CSV_BYTES_PER_BYTE", machine_memory())
    with pytest.raises(
        ValueError, match=r"big.csv' \(a CSV file of \d+ bytes\) needs about .* save large data as .npz"
    ):
        load_dataset(str(path))


def test_a_network_too_large_is_refused_before_it_is_allocated():
    with pytest.raises(
        ValueError,
        match=rf"a network 2-1000000000-1 needs about .* but this machine has {MEMORY}; "
        r"use fewer or narrower layers\.",
    ):
        MLP(2, (10**9,), 1)
    assert _peak(lambda: MLP(2, (10**6, 10**6), 1)) < 2**20


def test_training_too_large_is_refused_before_it_starts():
    ds = load_dataset("circle", n_samples=10**6)
    rows = len(ds.y_train)
    width = machine_memory() // (4 * rows) + 1  # a small network, but a forward pass over every row won't fit
    model = MLP(2, (width,), 1, activation="tanh")
    with pytest.raises(
        ValueError,
        match=rf"training a network 2-{width}-1 on {rows} rows needs about .* but this "
        rf"machine has {MEMORY}; use fewer or narrower layers\.",
    ):
        train(model, ds, learning_rate=0.1, epochs=1, batch_size=10)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_stack_of_astronomically_many_epochs_trains_without_a_table_per_epoch(optimizer):
    ds = load_dataset("xor")
    stack = Stack(
        ds, widths=[4], epochs=10**15, batch_size=10, optimizer=optimizer, dtype=np.float64, activation="relu"
    )
    stack.add(Member((4,), 0.05, seed=3), dataset=ds)
    for _ in range(3):
        stack.step_epoch()
    # Its first epochs are exactly the single engine's.
    model = MLP(2, (4,), 1, activation="relu", seed=3, dtype=np.float64)
    history = train(model, ds, learning_rate=0.05, epochs=3, batch_size=10, optimizer=optimizer, seed=3)
    stacked = stack.history(0)
    np.testing.assert_allclose(stacked.val_cost, history.val_cost, rtol=1e-6)


def test_shufflings_are_the_single_engines_draws_for_members_at_any_epoch():
    ds = load_dataset("circle")
    stack = Stack(ds, widths=[4], epochs=50, batch_size=10)
    rng = np.random.default_rng(7)
    reference = [rng.permutation(stack.n) for _ in range(12)]
    got = stack.data.shufflings({(7, 0)})
    for epoch in range(1, 12):  # one member walks on; others join at epoch 0 along the way
        got = stack.data.shufflings({(7, epoch), (7, 0), (8, epoch % 3)})
        assert np.array_equal(got[(7, epoch)], reference[epoch]) and np.array_equal(got[(7, 0)], reference[0])
    assert len(stack.data._cursors) == 3  # only the generators members will need next are kept


def test_adam_step_sizes_are_bit_identical_to_a_full_table():
    # A stack draws each epoch's bias corrections as its members reach it, never a table of every epoch.
    ds = load_dataset("circle")
    for dtype in (np.float32, np.float64):
        stack = Stack(ds, widths=[4], epochs=400, batch_size=10, optimizer="adam", dtype=dtype)
        steps = len(stack.starts)
        t = np.arange(1, 400 * steps + 1, dtype=np.float64)
        table = (np.sqrt(1 - 0.999**t) / (1 - 0.9**t)).astype(dtype)
        first = np.array([0, 7 * steps, 123 * steps, 399 * steps])
        expected = np.stack([table[f : f + steps] for f in first])
        adam = Adam(np.zeros((4, 3), dtype=dtype), learning_rate=np.ones((4, 1), dtype=dtype))
        assert adam.corrections(first, steps, dtype).tobytes() == expected.tobytes()
