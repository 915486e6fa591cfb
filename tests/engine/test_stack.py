"""The batched engine: each member's History equals the single-network engine's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine import ACTIVATIONS, MLP, OPTIMIZERS, load_dataset, train
from engine.stack.trainer import Member, Stack, train_stacked

MEMBERS = [Member((3, 5), 0.05, l2=1e-3), Member((6, 2), 0.02, l1=1e-3), Member((6, 5), 0.1)]


def _single(ds, m: Member, activation: str, optimizer: str, epochs: int, batch: int = 10, **kw):
    model = MLP(ds.n_features, m.hidden, ds.n_outputs, activation=activation, seed=m.seed, dtype=np.float64)
    return model, train(
        model,
        ds,
        learning_rate=m.learning_rate,
        epochs=epochs,
        batch_size=batch,
        optimizer=optimizer,
        l2=m.l2,
        l1=m.l1,
        seed=m.seed,
        **kw,
    )


def _assert_same(h, hs):
    for field in ("train_cost", "val_cost", "val_accuracy", "val_r2"):
        a, b = getattr(h, field), getattr(hs, field)
        assert len(a) == len(b), field
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, err_msg=field)
    assert (h.divergence is None) == (hs.divergence is None)
    if h.divergence is not None:
        assert (h.divergence.epoch, h.divergence.step, h.divergence.cause) == (
            hs.divergence.epoch,
            hs.divergence.step,
            hs.divergence.cause,
        )


@pytest.mark.parametrize(("activation", "optimizer"), list(itertools.product(sorted(ACTIVATIONS), sorted(OPTIMIZERS))))
def test_members_equal_single_networks(activation, optimizer):
    ds = load_dataset("circle", noise=0.1)
    out = train_stacked(
        MEMBERS, ds, activation=activation, epochs=4, batch_size=10, optimizer=optimizer, dtype=np.float64
    )
    for m, (model, h) in zip(MEMBERS, out):
        single, hs = _single(ds, m, activation, optimizer, 4)
        _assert_same(h, hs)
        for a, b in zip(model.params, single.params):  # the trained weights come back, unpadded
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


NESTEROV = {"momentum": 0.8, "nesterov": True}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_nesterov_members_equal_single_networks(activation):
    ds = load_dataset("circle", noise=0.1)
    out = train_stacked(
        MEMBERS, ds, activation=activation, epochs=4, batch_size=10, optimizer="momentum", dtype=np.float64, **NESTEROV
    )
    plain = train_stacked(
        MEMBERS,
        ds,
        activation=activation,
        epochs=4,
        batch_size=10,
        optimizer="momentum",
        momentum=0.8,
        dtype=np.float64,
    )
    for m, (model, h), (_, hp) in zip(MEMBERS, out, plain):
        single, hs = _single(ds, m, activation, "momentum", 4, **NESTEROV)
        _assert_same(h, hs)
        assert h.train_cost != hp.train_cost  # the stack does look ahead
        for a, b in zip(model.params, single.params):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", ["iris", "plane"])
def test_softmax_and_regression_members(name):
    ds = load_dataset(name)
    members = [Member((4,), 0.05), Member((7,), 0.01, l2=1e-2)]
    out = train_stacked(members, ds, activation="tanh", epochs=3, batch_size=16, optimizer="adam", dtype=np.float64)
    for m, (_, h) in zip(members, out):
        _assert_same(h, _single(ds, m, "tanh", "adam", 3, batch=16)[1])


def test_members_with_their_own_seeds_shuffle_alike_to_single_runs():
    ds = load_dataset("xor")
    members = [Member((4,), 0.1, seed=1), Member((4,), 0.1, seed=2), Member((2,), 0.3, seed=3)]
    out = train_stacked(members, ds, activation="relu", epochs=3, batch_size=10, dtype=np.float64)
    for m, (_, h) in zip(members, out):
        _assert_same(h, _single(ds, m, "relu", "sgd", 3)[1])
    assert out[0][1].train_cost != out[1][1].train_cost


def test_a_diverging_member_is_frozen_and_reported_while_the_others_go_on():
    ds = load_dataset("circle")
    members = [Member((8, 8), 50.0), Member((8, 8), 0.03), Member((4, 4), 0.1)]
    out = train_stacked(members, ds, activation="relu", epochs=6, batch_size=10, dtype=np.float64)
    hs = _single(ds, members[0], "relu", "sgd", 6)[1]
    assert out[0][1].divergence is not None
    _assert_same(out[0][1], hs)
    for m, (_, h) in zip(members[1:], out[1:]):
        assert h.divergence is None and h.epochs == 6
        _assert_same(h, _single(ds, m, "relu", "sgd", 6)[1])


def test_on_epoch_drops_a_member_from_the_stack():
    ds = load_dataset("gauss")
    seen = []

    def hook(member, epoch, history):
        seen.append((member, epoch))
        return not (member == 1 and epoch == 2)

    out = train_stacked(MEMBERS, ds, activation="tanh", epochs=4, batch_size=10, dtype=np.float64, on_epoch=hook)
    assert out[1][1].stopped_early and out[1][1].epochs == 2
    assert [e for m, e in seen if m == 1] == [1, 2]
    assert out[0][1].epochs == out[2][1].epochs == 4
    _assert_same(out[2][1], _single(ds, MEMBERS[2], "tanh", "sgd", 4)[1])


def test_padding_changes_nothing_even_where_the_activation_of_zero_is_not_zero():
    # sigmoid(0) = 1/2: padded units must be masked, and L1/Adam must leave their zeros alone.
    ds = load_dataset("spiral")
    members = [Member((2, 3), 0.5, l1=1e-2), Member((9, 7), 0.1)]
    out = train_stacked(members, ds, activation="sigmoid", epochs=3, batch_size=10, optimizer="adam", dtype=np.float64)
    narrow, h = out[0]
    assert [w.shape for w in narrow.weights] == [(2, 2), (2, 3), (3, 1)]
    single, hs = _single(ds, members[0], "sigmoid", "adam", 3)
    _assert_same(h, hs)
    for a, b in zip(narrow.params, single.params):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


MIXED = [
    Member((3, 5), 0.05, l2=1e-3, activation="relu"),
    Member((6,), 0.02, l1=1e-3, activation="sigmoid"),
    Member((), 0.1, activation="tanh"),
    Member((4, 2, 3), 0.1, activation="tanh"),
    Member((2,), 0.3, activation="relu"),
    Member((5, 5, 5), 0.03, l1=1e-3, activation="sigmoid"),
    Member((2, 4), 0.05, l2=1e-2, activation="sigmoid"),
    Member((3,), 0.02, activation="linear"),
]
# Sigmoid members of depths 1, 2, 3 next to tanh ones of depths 3 and 0: at every layer the
# sigmoid and tanh rows that have it form one run (their tanh and derivative shared).


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_members_of_other_depths_and_activations_share_a_stack(optimizer):
    # Shallower members ride on identity layers; each activation is applied to its own rows.
    ds = load_dataset("spiral")
    out = train_stacked(MIXED, ds, epochs=4, batch_size=10, optimizer=optimizer, dtype=np.float64)
    for m, (model, h) in zip(MIXED, out):
        single, hs = _single(ds, m, m.activation, optimizer, 4)
        _assert_same(h, hs)
        assert [w.shape for w in model.weights] == [w.shape for w in single.weights]
        for a, b in zip(model.params, single.params):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_nesterov_members_of_other_depths_and_activations_share_a_stack():
    # Identity layers' parameters are masked out of the look-ahead step too.
    ds = load_dataset("plane")
    out = train_stacked(MIXED, ds, epochs=4, batch_size=16, optimizer="momentum", dtype=np.float64, **NESTEROV)
    for m, (model, h) in zip(MIXED, out):
        single, hs = _single(ds, m, m.activation, "momentum", 4, batch=16, **NESTEROV)
        _assert_same(h, hs)
        for a, b in zip(model.params, single.params):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_a_member_diverging_in_a_mixed_stack_leaves_the_others_alone():
    ds = load_dataset("circle")
    members = [Member((8,), 50.0, activation="relu"), *MIXED[2:4]]
    out = train_stacked(members, ds, epochs=5, batch_size=10, dtype=np.float64)
    assert out[0][1].divergence is not None
    for m, (_, h) in zip(members, out):
        _assert_same(h, _single(ds, m, m.activation, "sgd", 5)[1])


def test_alone_in_a_stack_of_the_same_widths_is_bit_identical():
    # What `sweep reproduce` relies on: a member's sums do not depend on the other members.
    ds = load_dataset("xor")
    widths = [8, 8, 8]
    out = train_stacked(MIXED, ds, epochs=3, batch_size=10, optimizer="adam", widths=widths)
    for m, (model, h) in zip(MIXED, out):
        ((alone, ha),) = train_stacked([m], ds, epochs=3, batch_size=10, optimizer="adam", widths=widths)
        mine, alone_d = h.to_dict(), ha.to_dict()
        mine.pop("epoch_time"), alone_d.pop("epoch_time")
        assert mine == alone_d
        for a, b in zip(model.params, alone.params):
            assert np.array_equal(a, b)


def test_a_nesterov_member_alone_in_a_stack_of_the_same_widths_is_bit_identical():
    ds = load_dataset("spiral")
    widths = [8, 8, 8]
    out = train_stacked(MIXED, ds, epochs=3, batch_size=10, optimizer="momentum", widths=widths, **NESTEROV)
    for m, (model, h) in zip(MIXED, out):
        ((alone, ha),) = train_stacked(
            [m], ds, epochs=3, batch_size=10, optimizer="momentum", widths=widths, **NESTEROV
        )
        mine, alone_d = h.to_dict(), ha.to_dict()
        mine.pop("epoch_time"), alone_d.pop("epoch_time")
        assert mine == alone_d
        for a, b in zip(model.params, alone.params):
            assert np.array_equal(a, b)


def test_bad_stacks():
    ds = load_dataset("xor")
    with pytest.raises(ValueError, match=r"'widths' must give every hidden layer of the deepest member \(2\)"):
        train_stacked(
            [Member((2,), 0.1), Member((2, 2), 0.1)], ds, activation="tanh", epochs=1, batch_size=10, widths=[4]
        )
    with pytest.raises(ValueError, match="'activation' must be one of"):
        train_stacked([Member((2,), 0.1)], ds, activation="gelu", epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="'activation' must be one of"):
        train_stacked([Member((2,), 0.1, activation="swish")], ds, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="every member needs an activation"):
        train_stacked([Member((2,), 0.1)], ds, epochs=1, batch_size=10)


def test_members_join_and_leave_a_stack_between_epochs():
    # Continuous batching: a member that joins a stack already training shuffles as it would
    # alone (its own epochs), and leaves as soon as it is done or removed.
    ds = load_dataset("gauss")
    stack = Stack(ds, widths=[6, 6, 6], epochs=4, batch_size=10, optimizer="momentum", dtype=np.float64)
    first = [stack.add(m) for m in MIXED[:3]]
    stack.step_epoch()
    stack.step_epoch()
    later = [stack.add(m) for m in MIXED[3:]]
    stack.remove(first[1])  # pruned after 2 epochs
    while len(stack):
        stack.step_epoch()
    stack.flush()
    for m, h in zip(MIXED, first + later):
        expected = 2 if h == first[1] else 4
        single, hs = _single(ds, m, m.activation, "momentum", expected)
        history = stack.history(h)
        assert history.epochs == expected
        _assert_same(history, hs)
        for a, b in zip(stack.model(h).params, single.params):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_a_stack_refuses_members_that_do_not_fit():
    ds = load_dataset("xor")
    stack = Stack(ds, widths=[4, 4], epochs=1, batch_size=10, activation="tanh")
    with pytest.raises(ValueError, match=r"hidden layers \[5\] does not fit a stack of widths \[4, 4\]"):
        stack.add(Member((5,), 0.1))
    with pytest.raises(ValueError, match=r"hidden layers \[2, 2, 2\] does not fit"):
        stack.add(Member((2, 2, 2), 0.1))


def test_a_stack_refuses_a_momentum_outside_0_1():
    # As engine.train: checked when the stack is made, before any member joins.
    with pytest.raises(ValueError, match=r"'momentum' must be a number in \[0, 1\), but got 1.5"):
        Stack(load_dataset("xor"), widths=[4], epochs=1, batch_size=10, optimizer="momentum", momentum=1.5)


def test_members_of_several_datasets_share_a_stack():
    # Studies of same-shaped datasets (the playground's) train in one stack, each member on its own data.
    sets = {name: load_dataset(name) for name in ("circle", "xor", "spiral")}
    stack = Stack(sets["circle"], widths=[6, 6, 6], epochs=4, batch_size=10, dtype=np.float64)
    placed = [
        (m, sets[name], stack.add(m, dataset=sets[name]))
        for m, name in zip(MIXED, itertools.cycle(["circle", "xor", "spiral"]))
    ]
    while len(stack):
        stack.step_epoch()
    stack.flush()
    for m, ds, h in placed:
        single, hs = _single(ds, m, m.activation, "sgd", 4)
        _assert_same(stack.history(h), hs)
        for a, b in zip(stack.model(h).params, single.params):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_a_member_of_a_many_dataset_stack_retrains_alone_bit_for_bit():
    sets = [load_dataset(name) for name in ("gauss", "xor")]
    stack = Stack(sets[0], widths=[8, 8, 8], epochs=3, batch_size=10)
    handles = [stack.add(m, dataset=sets[i % 2]) for i, m in enumerate(MIXED)]
    while len(stack):
        stack.step_epoch()
    stack.flush()
    for i, (m, h) in enumerate(zip(MIXED, handles)):
        ((alone, ha),) = train_stacked([m], sets[i % 2], epochs=3, batch_size=10, widths=[8, 8, 8])
        mine, theirs = stack.history(h).to_dict(), ha.to_dict()
        mine.pop("epoch_time"), theirs.pop("epoch_time")
        assert mine == theirs
        for a, b in zip(stack.model(h).params, alone.params):
            assert np.array_equal(a, b)


def test_a_stack_refuses_a_dataset_of_other_shapes():
    stack = Stack(load_dataset("xor"), widths=[4], epochs=1, batch_size=10, activation="tanh")
    with pytest.raises(ValueError, match=r"dataset 'iris' can't share a stack with 'xor': its task is 'multiclass'"):
        stack.add(Member((2,), 0.1), dataset=load_dataset("iris"))


def _padded_stack(optimizer: str, dtype) -> list:
    from engine import with_features

    raw = load_dataset("spiral", noise=0.1)
    sets = [
        with_features(raw, f) for f in (["products"], ["linear", "sines"], ["linear", "squares", "products", "sines"])
    ]
    members = [
        Member((4,), 0.05, l2=1e-3, activation="tanh"),
        Member((3, 2), 0.05, l1=1e-3, activation="relu"),
        Member((), 0.1, activation="tanh"),
        Member((5,), 0.05, activation="sigmoid"),
    ]
    stack = Stack(sets[0], inputs=7, widths=[7, 7], epochs=3, batch_size=10, optimizer=optimizer, dtype=dtype)
    placed = [(m, sets[i % 3], stack.add(m, dataset=sets[i % 3])) for i, m in enumerate(members)]
    while len(stack):
        stack.step_epoch()
    stack.flush()
    return [(m, ds, stack.model(h), stack.history(h)) for m, ds, h in placed]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_members_of_other_input_features_share_a_padded_stack(optimizer):
    # Trials with other input features (other input widths) share a stack whose input layer is
    # the widest: narrower data padded with zero columns, the weights from them kept at zero.
    for m, ds, model, h in _padded_stack(optimizer, np.float64):
        assert model.sizes[0] == ds.n_features  # the member's own inputs, unpadded
        single, hs = _single(ds, m, m.activation, optimizer, 3)
        _assert_same(h, hs)
        for a, b in zip(model.params, single.params):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)
    for m, ds, model, h in _padded_stack(optimizer, np.float32):
        ((alone, ha),) = train_stacked([m], ds, epochs=3, batch_size=10, optimizer=optimizer, widths=[7, 7], inputs=7)
        mine, theirs = h.to_dict(), ha.to_dict()
        mine.pop("epoch_time"), theirs.pop("epoch_time")
        assert mine == theirs  # retrained alone with the same widths and inputs: bit for bit
        for a, b in zip(model.params, alone.params):
            assert np.array_equal(a, b)


def test_a_stack_refuses_inputs_narrower_than_its_data():
    from engine import with_features

    wide = with_features(load_dataset("xor"), ["linear", "sines"])
    with pytest.raises(ValueError, match=r"'inputs' must be an integer >= 4, but got 3"):
        Stack(wide, inputs=3, widths=[4], epochs=1, batch_size=10, activation="tanh")
    stack = Stack(load_dataset("xor"), inputs=3, widths=[4], epochs=1, batch_size=10, activation="tanh")
    with pytest.raises(
        ValueError,
        match=r"dataset 'xor' can't share a stack with 'xor': its n_features is 4, "
        r"more than the stack's 3 inputs",
    ):
        stack.add(Member((2,), 0.1), dataset=wide)
