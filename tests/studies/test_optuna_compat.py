"""Optuna's private names used here (studies/_optuna_compat/): fail loudly when upstream
renames or changes them, before anything subtler breaks."""

from __future__ import annotations

import ast
import inspect
import math
import threading
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.samplers._tpe import _truncnorm
from optuna.trial import TrialState

from studies import _optuna_compat as compat


def test_journal_operation_codes_are_the_ones_the_file_holds(tmp_path):
    op = compat.JournalOperation
    assert {o.name: int(o) for o in op} == {
        "CREATE_STUDY": 0,
        "DELETE_STUDY": 1,
        "SET_STUDY_USER_ATTR": 2,
        "SET_STUDY_SYSTEM_ATTR": 3,
        "CREATE_TRIAL": 4,
        "SET_TRIAL_PARAM": 5,
        "SET_TRIAL_STATE_VALUES": 6,
        "SET_TRIAL_INTERMEDIATE_VALUE": 7,
        "SET_TRIAL_USER_ATTR": 8,
        "SET_TRIAL_SYSTEM_ATTR": 9,
        "DISCARD_TRIALS": 10,
    }
    # And a journal written by Optuna says so.
    path = str(tmp_path / "j")
    backend = optuna.storages.journal.JournalFileBackend(path)
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend), study_name="s")
    study.tell(study.ask(), 1.0)
    codes = [log["op_code"] for log in backend.read_logs(0)]
    assert codes[0] == op.CREATE_STUDY and op.SET_TRIAL_STATE_VALUES in codes


def test_rdb_private_names_we_use_are_there(tmp_path):
    """The batched RDB writes and reads (studies._optuna_compat) use these; equality of what
    they write with Optuna's own calls is tests/studies/test_store.py's."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    assert list(inspect.signature(_create_scoped_session).parameters) == ["scoped_session", "ignore_integrity_error"]
    assert list(inspect.signature(optuna.storages.RDBStorage._get_trials).parameters) == [
        "self",
        "study_id",
        "states",
        "included_trial_ids",
        "trial_id_greater_than",
    ]
    for name in ("trial_id", "number", "study_id", "state", "_datetime_complete_utc", "count_past_trials"):
        assert hasattr(models.TrialModel, name), name
    assert callable(models.StudyModel.find_or_raise_by_id)
    for cls, fields in (
        (models.TrialParamModel, ("trial_id", "param_name", "param_value", "distribution_json")),
        (models.TrialIntermediateValueModel, ("trial_id", "step", "intermediate_value", "intermediate_value_type")),
        (models.TrialValueModel, ("trial_id", "objective", "value", "value_type")),
        (models.TrialUserAttributeModel, ("trial_id", "key", "value_json")),
        (models.TrialSystemAttributeModel, ("trial_id", "key", "value_json")),
        (models.TrialHeartbeatModel, ("trial_id", "heartbeat")),
    ):
        assert all(hasattr(cls, f) for f in fields), cls
    assert models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(float("inf"))[1].name == "INF_POS"
    assert models.TrialValueModel.value_to_stored_repr(1.5) == (1.5, models.TrialValueModel.TrialValueType.FINITE)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=5, grace_period=10)
    assert storage.heartbeat_interval == 5 and hasattr(storage, "scoped_session")


def test_journal_storage_private_names_we_use_are_there(tmp_path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j")))
    assert isinstance(compat.journal_worker_id(storage), str)
    assert callable(storage._sync_with_backend) and hasattr(storage._thread_lock, "acquire")
    assert isinstance(storage._backend, optuna.storages.journal.BaseJournalBackend)
    assert callable(storage._replay_result.get_trial)


def test_journal_backend_interface_we_override():
    base = optuna.storages.journal.JournalFileBackend
    assert list(inspect.signature(base.read_logs).parameters) == ["self", "log_number_from"]
    assert list(inspect.signature(base.append_logs).parameters) == ["self", "logs"]
    assert list(inspect.signature(base.__init__).parameters) == ["self", "file_path", "lock_obj"]


# -- The sampler side (studies/search/samplers.py) -------------------------------------------------------


def _tpe_study(sampler: optuna.samplers.BaseSampler, n: int = 20) -> optuna.Study:
    """A study of ``x`` (always), ``c`` (always) and ``y`` (when c == 'b'), ``n`` trials told."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    rng = np.random.default_rng(0)
    for i in range(n):
        x, c = rng.uniform(-3, 3), ["a", "b"][i % 2]
        params, dists = {"x": x, "c": c}, {"x": FloatDistribution(-3, 3), "c": CategoricalDistribution(["a", "b"])}
        if c == "b":
            params["y"], dists["y"] = float(rng.uniform(1e-3, 1)), FloatDistribution(1e-3, 1, log=True)
        study.add_trial(
            optuna.trial.create_trial(value=x**2 + params.get("y", 1.0) - 1, params=params, distributions=dists)
        )
    return study


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3, 3)
    if trial.suggest_categorical("c", ["a", "b"]) == "b":
        return x**2 + trial.suggest_float("y", 1e-3, 1, log=True) - 1
    return x**2


def _tpe(cls: type = optuna.samplers.TPESampler, **kw) -> optuna.samplers.TPESampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(**kw)


def test_tpe_private_names_we_use_are_there():
    tpe = optuna.samplers.TPESampler
    assert list(inspect.signature(tpe._sample).parameters) == ["self", "study", "trial", "search_space"]
    assert list(inspect.signature(tpe._compute_acquisition_func).parameters) == [
        "self",
        "samples",
        "mpe_below",
        "mpe_above",
    ]
    sampler = _tpe(seed=0, n_ei_candidates=7, multivariate=True, group=True)
    assert sampler._n_ei_candidates == 7
    assert compat.tpe_search_space_group(sampler) is None
    study = _tpe_study(sampler)
    space = sampler.infer_relative_search_space(study, study.trials[-1])
    group = compat.tpe_search_space_group(sampler)
    assert sorted(map(sorted, group.search_spaces)) == [["c", "x"], ["y"]] and sorted(space) == ["c", "x", "y"]


@pytest.mark.parametrize(
    "options", [dict(multivariate=True, group=True), dict(multivariate=True), dict(multivariate=False)]
)
def test_tpe_samples_every_parameter_through_the_one_step_we_hook(options):
    """TPESamplerHooks.sample_space replaces ``TPESampler._sample``: both sample_relative (per
    group) and sample_independent must go through it, and by default it is Optuna's."""
    seen = []

    class Spy(compat.TPESamplerHooks):
        def sample_space(self, study, trial, search_space):
            seen.append(sorted(search_space))
            return super().sample_space(study, trial, search_space)

    kw = dict(seed=5, n_startup_trials=4, **options)
    ours, theirs = _tpe_study(_tpe(Spy, **kw)), _tpe_study(_tpe(**kw))
    for study in (ours, theirs):
        study.enqueue_trial({"c": "b"})  # a trial with y, whatever TPE prefers
        study.optimize(_objective, n_trials=6)
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
    assert {name for names in seen for name in names} == {"x", "c", "y"}  # every parameter went through it
    if options.get("group"):
        assert ["y"] in seen and ["c", "x"] in seen  # a step per group
    elif not options["multivariate"]:
        assert ["x"] in seen and ["c"] in seen  # a step per parameter (independent)


@pytest.mark.parametrize("constant_liar", [True, False])
def test_tpe_candidates_of_one_set_are_optunas_step(constant_liar):
    """Optuna's step and ours from the same sampler state: the best of one set is what it
    samples, from the same random draws; more sets keep drawing from the one fit."""
    kw = dict(seed=3, n_startup_trials=4, multivariate=True, constant_liar=constant_liar)
    dists = {"x": FloatDistribution(-3, 3), "c": CategoricalDistribution(["a", "b"])}
    for sets in (1, 3):
        a, b = _tpe(**kw), _tpe(**kw)
        study_a, study_b = _tpe_study(a), _tpe_study(b)
        ta, tb = study_a.ask(), study_b.ask()
        fa, fb = study_a._storage.get_trial(ta._trial_id), study_b._storage.get_trial(tb._trial_id)
        expected = optuna.samplers.TPESampler._sample(a, study_a, fa, dists)
        samples, acquisition = compat.tpe_candidates(b, study_b, fb, dists, sets=sets)
        assert len(acquisition) == 24 * sets and all(len(v) == 24 * sets for v in samples.values())
        assert b._n_ei_candidates == 24 and "_compute_acquisition_func" not in vars(b)  # all put back
        if sets == 1:
            best = int(np.argmax(acquisition))
            assert {k: dists[k].to_external_repr(samples[k][best].item()) for k in dists} == expected
            # The same random state afterwards: Optuna's next step is the same on both.
            assert optuna.samplers.TPESampler._sample(a, study_a, fa, dists) == optuna.samplers.TPESampler._sample(
                b, study_b, fb, dists
            )


def test_tpe_candidates_fail_loudly_when_optunas_step_changes(monkeypatch):
    sampler = _tpe(seed=0, n_startup_trials=2, multivariate=True)
    study = _tpe_study(sampler)
    trial = study._storage.get_trial(study.ask()._trial_id)
    # An Optuna whose step no longer scores its candidates with _compute_acquisition_func.
    monkeypatch.setattr(optuna.samplers.TPESampler, "_sample", lambda self, study, trial, space: {"x": 0.0})
    with pytest.raises(RuntimeError, match=r"TPESampler\._sample no longer .* must follow it"):
        compat.tpe_candidates(sampler, study, trial, {"x": FloatDistribution(-3, 3)}, sets=2)
    assert sampler._n_ei_candidates == 24 and "_compute_acquisition_func" not in vars(sampler)


def test_a_remembered_search_space_group_is_put_back():
    sampler = _tpe(seed=0, n_startup_trials=2, multivariate=True, group=True)
    study = _tpe_study(sampler)
    sampler.infer_relative_search_space(study, study.trials[-1])
    group = compat.tpe_search_space_group(sampler)
    compat.set_tpe_search_space_group(sampler, None)
    assert compat.tpe_search_space_group(sampler) is None
    compat.set_tpe_search_space_group(sampler, group)
    trial = study._storage.get_trial(study.ask()._trial_id)
    space = {
        "x": FloatDistribution(-3, 3),
        "c": CategoricalDistribution(["a", "b"]),
        "y": FloatDistribution(1e-3, 1, log=True),
    }
    assert sorted(sampler.sample_relative(study, trial, space)) == ["c", "x", "y"]  # groups from the one put back


# -- The vectorized log Phi --------------------------------------------------------------------------


def test_scipys_log_ndtr_equals_optunas_to_1e7():
    from scipy.special import log_ndtr

    x = np.concatenate([np.linspace(-60, 12, 2001), [-1e3, -37.5, -20.0, -19.99, 0.0, 6.0, 6.01, 40.0]])
    theirs = compat.optuna_log_ndtr(x)
    np.testing.assert_allclose(log_ndtr(x), theirs, rtol=1e-7, atol=1e-300)
    with compat.vectorized_log_ndtr():
        np.testing.assert_array_equal(compat.optuna_log_ndtr(x), theirs)  # still Optuna's own, inside
        a, b = np.full_like(x, -2.0), np.full_like(x, 3.0)
        inside = _truncnorm.logpdf(np.clip(x, -2, 3), a, b)
    np.testing.assert_allclose(inside, _truncnorm.logpdf(np.clip(x, -2, 3), a, b), rtol=1e-7)


def test_tpe_uses_the_vectorized_log_ndtr_only_inside(monkeypatch):
    import scipy.special

    original = _truncnorm._log_ndtr
    calls = []
    scipy_log_ndtr = scipy.special.log_ndtr
    monkeypatch.setattr(scipy.special, "log_ndtr", lambda x: calls.append(np.size(x)) or scipy_log_ndtr(x))
    sampler = _tpe(seed=0, n_startup_trials=4, multivariate=True)
    study = _tpe_study(sampler)
    study.optimize(_objective, n_trials=2)
    assert not calls and _truncnorm._log_ndtr is original  # Optuna's own, outside
    with compat.vectorized_log_ndtr():
        assert _truncnorm._log_ndtr is not original
        with compat.vectorized_log_ndtr():  # reentrant
            pass
        study.optimize(_objective, n_trials=2)
    assert calls and max(calls) >= 24  # TPE's truncated normal looked it up, whole arrays at a time
    assert _truncnorm._log_ndtr is original


def test_the_vectorized_log_ndtr_is_thread_safe():
    original = _truncnorm._log_ndtr
    n = 6
    inside, first_left = threading.Barrier(n), threading.Event()
    seen: list[bool] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with compat.vectorized_log_ndtr():
                inside.wait(timeout=60)  # all inside at once
                seen.append(_truncnorm._log_ndtr is not original)
                if i:
                    first_left.wait(timeout=60)
                    seen.append(_truncnorm._log_ndtr is not original)  # still, after the first one left
            if not i:
                first_left.set()
            for _ in range(200):  # and many enter and leave at once
                with compat.vectorized_log_ndtr():
                    seen.append(_truncnorm._log_ndtr is not original)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(seen) == n + (n - 1) + 200 * n and all(seen)
    assert _truncnorm._log_ndtr is original


# -- The percentile pruner's helpers ------------------------------------------------------------------


def test_percentile_pruner_helpers_are_there_and_mean_what_we_use_them_for():
    from optuna.pruners import _percentile

    assert list(inspect.signature(_percentile._is_first_in_interval_step).parameters) == [
        "step",
        "intermediate_steps",
        "n_warmup_steps",
        "interval_steps",
    ]
    assert list(inspect.signature(_percentile._get_best_intermediate_result_over_steps).parameters) == [
        "trial",
        "direction",
    ]
    assert list(inspect.signature(_percentile._get_percentile_intermediate_result_over_trials).parameters) == [
        "completed_trials",
        "direction",
        "step",
        "percentile",
        "n_min_trials",
    ]
    assert list(inspect.signature(optuna.pruners.PercentilePruner).parameters) == [
        "percentile",
        "n_startup_trials",
        "n_warmup_steps",
        "interval_steps",
        "n_min_trials",
    ]
    # steps 0..9 reported, warm-up 2, every 3rd: 2, 5, 8 are the first of their interval
    first = [
        s
        for s in range(2, 10)
        if compat.percentile_first_in_interval(s, range(s + 1), n_warmup_steps=2, interval_steps=3)
    ]
    assert first == [2, 5, 8]
    assert not compat.percentile_first_in_interval(6, [0, 5, 6], n_warmup_steps=2, interval_steps=3)
    assert compat.percentile_first_in_interval(6, [0, 4, 6], n_warmup_steps=2, interval_steps=3)  # 5 skipped
    Dir = optuna.study.StudyDirection
    trial = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values={0: 3.0, 1: float("nan"), 2: 1.0})
    assert compat.percentile_best_so_far(trial, Dir.MINIMIZE) == 1.0
    assert compat.percentile_best_so_far(trial, Dir.MAXIMIZE) == 3.0
    done = [optuna.trial.create_trial(value=v, intermediate_values={4: v}) for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    assert compat.percentile_at_step(done, Dir.MINIMIZE, 4, percentile=25, n_min_trials=1) == 2.0
    assert compat.percentile_at_step(done, Dir.MAXIMIZE, 4, percentile=25, n_min_trials=1) == 4.0  # from the top
    assert math.isnan(compat.percentile_at_step(done, Dir.MINIMIZE, 4, percentile=50, n_min_trials=6))
    assert math.isnan(compat.percentile_at_step(done, Dir.MINIMIZE, 3, percentile=50, n_min_trials=1))


# -- No private name outside this module --------------------------------------------------------------


def test_the_sampler_module_uses_no_private_optuna_name():
    """studies/search/samplers.py reaches Optuna's private names only through studies._optuna_compat:
    no private module or name imported, no ``x._name`` on anything but its own attributes, and
    none of its own private attributes or methods shadows one of the Optuna classes it extends."""
    from studies.search import samplers

    tree = ast.parse(Path(samplers.__file__).read_text())
    bases = [optuna.samplers.TPESampler, optuna.samplers.GridSampler, optuna.pruners.PercentilePruner]
    upstream = set().union(*(dir(b) for b in bases))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        upstream |= set(vars(optuna.samplers.TPESampler(multivariate=True, group=True)))
    upstream |= set(vars(optuna.pruners.PercentilePruner(50.0)))
    upstream |= set(vars(optuna.samplers.GridSampler({"x": [0]})))
    own = {
        t.attr
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        for t in (t.elts if isinstance(t, ast.Tuple) else [t])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    private = lambda name: name.startswith("_") and not name.startswith("__")  # noqa: E731
    assert own and not (own & upstream), own & upstream
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            names = [module, *(a.name for a in node.names)]
            if any(n.split(".")[0] == "optuna" for n in names) or module.startswith("optuna"):
                assert not any(private(part) for n in names for part in n.split(".")), ast.unparse(node)
        elif isinstance(node, ast.Attribute) and private(node.attr):
            assert isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr in own, ast.unparse(node)
        elif isinstance(node, ast.FunctionDef) and private(node.name):
            assert node.name not in upstream, node.name  # no override of a private hook


# -- The tested ranges --------------------------------------------------------------------------------


def test_the_installed_versions_are_within_the_ranges_pyproject_states():
    """pyproject.toml states the tested ranges (Optuna and MLflow to one minor release): an
    upgrade outside them fails here first, naming the package, before anything subtler."""
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    for req in requirements:
        installed = importlib.metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), (
            f"{req.name} {installed} is outside the tested range {req.specifier} of pyproject.toml"
        )
    bounds = {req.name: {spec.operator for spec in req.specifier} for req in requirements}
    assert bounds["optuna"] == bounds["mlflow"] == {">=", "<"}
    assert next(r for r in requirements if r.name == "optuna").specifier.contains(optuna.__version__)


def test_loky_keeps_its_worker_processes_where_we_look():
    """studies/execution/_loky_compat.py: stopping a sweep reaches every loky worker process."""
    from joblib.externals.loky import get_reusable_executor

    from studies.execution._loky_compat import worker_processes

    ex = get_reusable_executor(max_workers=2, timeout=5)
    assert ex.submit(sum, [1, 2]).result() == 3
    procs = worker_processes(ex)
    assert len(procs) == 2 and all(p.is_alive() and callable(p.terminate) for p in procs)


# -- Ids ----------------------------------------------------------------------------------------------


def test_the_ids_optuna_keeps_privately_are_where_we_read_them(tmp_path):
    """A study's and a trial's storage ids, and a study's storage, are read through ids.py; if Optuna
    renames the attributes, this fails here rather than deep inside a worker."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'ids.db'}")
    study = optuna.create_study(storage=storage, study_name="ids")
    trial = study.ask()
    study.tell(trial, 1.0)
    frozen_study = storage.get_all_studies()[0]
    assert isinstance(frozen_study, compat.FrozenStudy)
    assert compat.study_id(study) == compat.study_id(frozen_study) == storage.get_study_id_from_name("ids")
    held = compat.study_storage(study)  # Optuna wraps an RDB storage in its cache
    assert held is storage or held._backend is storage
    assert (
        compat.trial_id(trial)
        == compat.trial_id(study.trials[0])
        == storage.get_trial_id_from_study_id_trial_number(compat.study_id(study), 0)
    )


def test_no_module_outside_the_compat_modules_imports_a_private_optuna_name():
    """Optuna's private modules and names are imported only in studies/_optuna_compat/."""
    root = Path(compat.__file__).parents[2]
    offenders = []
    for path in [*root.glob("studies/**/*.py"), *root.glob("sweeps/**/*.py"), *root.glob("engine/**/*.py")]:
        if "_optuna_compat" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optuna"):
                names = [*(node.module or "").split("."), *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [p for a in node.names if a.name.startswith("optuna") for p in a.name.split(".")]
            elif (
                isinstance(node, ast.Attribute)
                and node.attr in {"_study_id", "_trial_id", "_storage"}
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")
            ):
                names = [node.attr]
            else:
                continue
            if any(n.startswith("_") and not n.startswith("__") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, offenders


def _varied_study(url: str) -> tuple[optuna.storages.RDBStorage, int]:
    """A study with every kind of trial content the reader maps: params of every distribution,
    several objectives, infinite and NaN intermediate values, user and system attributes, and
    trials in every state."""
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        storage=storage,
        study_name="read",
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for i in range(40):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1.0, log=True)
        trial.suggest_int("units", 1, 9, step=2)
        trial.suggest_categorical("act", ["relu", None, 3.5])
        trial.set_user_attr("note", {"i": i, "s": "é"})
        storage.set_trial_system_attr(compat.trial_id(trial), "sys", [i])
        for step, v in enumerate([0.5, float("inf"), float("-inf"), float("nan"), 0.25][: i % 6]):
            storage.set_trial_intermediate_value(compat.trial_id(trial), step, v)
        if i % 4 == 0:
            study.tell(trial, [float(i), float("inf") if i % 8 == 0 else -1.0])
        elif i % 4 == 1:
            study.tell(trial, state=TrialState.FAIL)
        elif i % 4 == 2:
            study.tell(trial, state=TrialState.PRUNED)
    return storage, compat.study_id(study)


def _same(ours, theirs):
    assert [t.number for t in ours] == [t.number for t in theirs]
    for a, b in zip(ours, theirs, strict=True):
        for field in (
            "state",
            "values",
            "datetime_start",
            "datetime_complete",
            "params",
            "distributions",
            "user_attrs",
            "system_attrs",
            "_trial_id",
        ):
            assert getattr(a, field) == getattr(b, field), (a.number, field)
        assert list(a.params) == list(b.params)
        ia, ib = a.intermediate_values, b.intermediate_values
        assert sorted(ia) == sorted(ib) and all(ia[k] == ib[k] or (math.isnan(ia[k]) and math.isnan(ib[k])) for k in ia)


@pytest.mark.parametrize(
    "kind",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)],
)
def test_the_fast_rdb_reader_equals_optunas_get_trials(kind, tmp_path, request):
    """``rdb_read_trials`` reads Optuna's tables with plain queries: what it returns equals
    Optuna's own ``RDBStorage._get_trials`` for every selection the snapshot makes."""
    url = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'r.db'}",
        "postgres": lambda: request.getfixturevalue("pg_database")(),
        "mysql": lambda: request.getfixturevalue("mysql_database")(),
    }[kind]()
    storage, study_id = _varied_study(url)
    ids = sorted(compat.trial_id(t) for t in storage.get_all_trials(study_id))
    for include, after in (
        (set(ids), None),
        (set(), -1),
        (set(ids[3:9]), ids[20]),
        (set(ids[::7]), None),
        (set(), ids[-1]),
        (set(ids[5:]), None),
    ):
        theirs = storage._get_trials(study_id, None, set(include), 2**31 - 1 if after is None else after)
        _same(compat.rdb_read_trials(storage, study_id, include=include, after=after), theirs)
    # More ids than one query binds: the study is read from the smallest and filtered.
    wide = set(ids[1::2])
    import studies._optuna_compat.rdb as rdb

    old, rdb._MOST_BOUND = rdb._MOST_BOUND, 3
    try:
        _same(
            compat.rdb_read_trials(storage, study_id, include=wide, after=ids[-3]),
            storage._get_trials(study_id, None, wide, ids[-3]),
        )
        # ``after`` below every included id: the trials between them are read too.
        _same(
            compat.rdb_read_trials(storage, study_id, include=set(ids[20:30]), after=ids[5]),
            storage._get_trials(study_id, None, set(ids[20:30]), ids[5]),
        )
    finally:
        rdb._MOST_BOUND = old
    with pytest.raises(KeyError):
        compat.rdb_read_trials(storage, study_id + 99, include=set(), after=-1)
