"""Trials trained stacked, with continuous batching: a worker keeps up to ``stack`` trials in
engine stacks, and refills the slots of finished, pruned and diverged trials with new ones.

A fixed batch would keep training while its members are pruned one by one (a stack's step
costs about the same with 3 members as with 32), and would end with the slowest member. Here a
trial joins the stack between epochs, trains at its own epoch with its own shuffling, and
leaves when it ends; every ``report_every`` epochs it reports to its Optuna trial and asks
the pruner, exactly as a trial trained alone. New trials are asked for in batches (a quarter
of the slots at least) so that the sampler fits its model once per batch
(:class:`~studies.search.samplers.BatchTPESampler`).

A worker has one pool for all its studies: trials of studies whose datasets have the same
shapes (the playground's four) share a stack, each on its own data, so that a worker moving
from one study to the next, or starting several studies, still fills one stack.

A trial trains on its dataset's inputs of its feature families (``engine.with_features``,
made once per dataset and families). Its stack's input layer is as wide as the space's
widest inputs for that dataset, so that trials of any feature set share it (a narrower
member's data is padded with zero columns, and its weights from them stay zero).

Each stack has the search space's widest widths and inputs, so every trial's sums have the same
shapes whatever its stack-mates: ``sweep reproduce`` retrains it alone in a stack of the
recorded widths and gets the same bits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import optuna

from engine import Dataset, History, Member, Stack, with_features
from studies.search.quota import Limits
from studies.search.samplers import batch_of
from studies.search.trial import Reporter, TrialResult, record
from studies.sweep import SweepConfig, TrainArgs, mean_history, repeat_seeds

__all__ = ["Pool", "Finished"]


@dataclass
class _Entry:
    study: int  # its study's index in the sweep
    trial: optuna.Trial
    args: TrainArgs
    reporter: Reporter
    inputs: int  # its own network's inputs and outputs (without the stack's padding)
    outputs: int
    handles: list[int] = field(default_factory=list)  # its members: one per seed (``repeats``)
    seconds: float = 0.0  # its share of the stack's time


@dataclass
class Finished:
    """A trial that left its stack, recorded; the caller tells Optuna."""

    study: int
    trial: optuna.Trial
    result: TrialResult


def _shapes(dataset: Dataset) -> tuple:
    """What datasets sharing a stack must have alike."""
    return dataset.task, dataset.n_features, dataset.n_outputs, len(dataset.X_train), len(dataset.X_val)


@dataclass
class Pool:
    """A worker's stacks, one per set of settings members must share (data shapes, optimizer,
    batch size, epochs), whatever study their trials belong to."""

    config: SweepConfig
    stacks: dict[tuple, Stack] = field(default_factory=dict)
    entries: dict[tuple[tuple, int], _Entry] = field(default_factory=dict)
    inputs: dict[tuple[int, tuple[str, ...]], tuple[Dataset, Dataset]] = field(default_factory=dict)
    limits: Limits | None = None  # the sweep's deadline, the trials' limit, the stopped studies

    def __len__(self) -> int:
        return len(self._distinct())

    def _distinct(self) -> list[_Entry]:
        """Each trial's entry once (a trial with repeated seeds has one per member)."""
        return list({id(e): e for e in self.entries.values()}.values())

    @property
    def trials(self) -> list[tuple[int, optuna.Trial]]:
        """Every trial in the pool, with its study's index."""
        return [(e.study, e.trial) for e in self._distinct()]

    def add(
        self, study: int, sampler: optuna.samplers.BaseSampler, dataset: Dataset, trials: list[optuna.Trial]
    ) -> None:
        """Sample the trials' parameters (one sampler fit for all) and queue them in their stacks."""
        with batch_of(sampler, len(trials)):
            args = [self.config.space.suggest(t) for t in trials]
        for trial, a in zip(trials, args):
            ds = self._inputs(dataset, a.features)
            key = (_shapes(dataset), a.optimizer, a.batch_size, a.epochs, a.momentum, a.nesterov)
            stack = self.stacks.get(key)
            if stack is None:
                shape = self.config.stack_shape
                inputs = shape.inputs if shape else self.config.space.input_width(dataset.n_raw_features)
                stack = self.stacks[key] = Stack(
                    ds,
                    inputs=inputs,
                    widths=list(shape.widths) if shape else self.config.space.stack_widths(inputs),
                    epochs=a.epochs,
                    batch_size=a.batch_size,
                    optimizer=a.optimizer,
                    momentum=a.momentum,
                    nesterov=a.nesterov,
                    divergence_factor=self.config.divergence_factor,
                )
            cut = None if self.limits is None else self.limits.cutter(study)
            entry = _Entry(
                study,
                trial,
                a,
                Reporter(trial, self.config, a.epochs, cut=cut),
                inputs=ds.n_features,
                outputs=ds.n_outputs,
            )
            for seed in repeat_seeds(self.config.seed, self.config.repeats):  # K seeds of one configuration
                member = Member(a.hidden, a.learning_rate, l2=a.l2, l1=a.l1, seed=seed, activation=a.activation)
                entry.handles.append(stack.add(member, dataset=ds))
                self.entries[(key, entry.handles[-1])] = entry

    def _inputs(self, dataset: Dataset, features: tuple[str, ...]) -> Dataset:
        """The dataset with the inputs of ``features``, made once (a stack knows its datasets by identity)."""
        key = (id(dataset), features)
        if key not in self.inputs:
            self.inputs[key] = (dataset, with_features(dataset, features))  # holds dataset: its id stays its own
        return self.inputs[key][1]

    def step(self) -> list[Finished]:
        """One epoch of every stack; returns the trials that ended, recorded."""
        done: list[Finished] = []
        for key, stack in list(self.stacks.items()):
            t0 = time.perf_counter()
            trained = stack.step_epoch()
            share = (time.perf_counter() - t0) / max(1, len(trained))
            stepped = {id(e): e for e in (self.entries[(key, h)] for h in trained)}  # each trial once
            for handle in trained:
                self.entries[(key, handle)].seconds += share
            for entry in stepped.values():
                finished = self._after_epoch(key, stack, entry)
                if finished is not None:
                    done.append(finished)
            if not any(k == key for k, _ in self.entries):
                del self.stacks[key]
        return done

    def _after_epoch(self, key: tuple, stack: Stack, entry: _Entry) -> Finished | None:
        """Report a trial's epoch (its seeds' mean with ``repeats``), and record it if it ended."""
        seeds = [stack.history(h) for h in entry.handles]
        history = seeds[0] if len(seeds) == 1 else mean_history(seeds, last=True)  # the whole mean once it ends
        epoch = stack.epoch_of(entry.handles[0])
        ended = history.divergence is not None or epoch >= entry.args.epochs
        if history.divergence is None and not entry.reporter(epoch, history):
            history.stopped_early = True
            for seed in seeds:
                seed.stopped_early = True
            ended = True
        if not ended:
            return None
        return self._leave(key, stack, entry, seeds)

    def _leave(
        self, key: tuple, stack: Stack, entry: _Entry, seeds: list[History], *, cut: str | None = None
    ) -> Finished:
        """A trial leaves its stack (every seed: a seed diverged, its mates leave with it), recorded."""
        history = seeds[0] if len(seeds) == 1 else mean_history(seeds)
        if cut is not None:
            history.stopped_early = True
        for h in entry.handles:
            stack.remove(h)
            del self.entries[(key, h)]
        result = record(
            entry.trial,
            entry.args,
            history,
            self.config,
            pruned=entry.reporter.pruned,
            cut=cut or entry.reporter.cut,
            train_seconds=entry.seconds,
            report_seconds=entry.reporter.seconds,
            inputs=entry.inputs,
            outputs=entry.outputs,
            stack={"widths": stack.widths, "inputs": stack.n_inputs},
            seeds=seeds if len(seeds) > 1 else None,
        )
        return Finished(entry.study, entry.trial, result)

    def expire(self) -> tuple[list[Finished], list[tuple[int, optuna.Trial]]]:
        """The sweep's deadline passed before the next epoch began: every trial leaves without
        training another epoch. Returns those that trained, recorded as cut by the budget, and
        those that never trained (sampled as the deadline passed), for the caller to withdraw."""
        done: list[Finished] = []
        unstarted: list[tuple[int, optuna.Trial]] = []
        for (key, _), entry in list(self.entries.items()):
            if (key, entry.handles[0]) not in self.entries:
                continue  # a trial with several seeds: already left with its first member
            stack = self.stacks[key]
            if stack.epoch_of(entry.handles[0]) == 0:
                unstarted.append((entry.study, entry.trial))
                for h in entry.handles:
                    del self.entries[(key, h)]
                continue
            seeds = [stack.history(h) for h in entry.handles]
            for seed in seeds:
                seed.stopped_early = True
            done.append(self._leave(key, stack, entry, seeds, cut="budget"))
        self.entries.clear()
        self.stacks.clear()
        return done, unstarted

    def abandon(self) -> list[tuple[int, optuna.Trial]]:
        """Stop every trial in the pool (after an error); returns them (with their study's
        index) for the caller to fail."""
        trials = self.trials
        self.entries.clear()
        self.stacks.clear()
        return trials
