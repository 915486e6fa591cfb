"""Guard: the names studies/tracking/_ui_compat.py uses are in the installed MLflow UI's JavaScript.

The runs page's shared views, its search facets, its column names and its workflow switch are
not a documented API: when an MLflow release renames them, the printed links would open a
plain page. This test reads the installed bundle and fails, naming what went missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.tracking import _ui_compat as ui


@pytest.fixture(scope="module")
def bundle() -> str:
    import mlflow

    folder = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    files = sorted(folder.glob("*.js"))
    assert files, f"no MLflow UI bundle under {folder}"
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def test_the_shared_view_names_are_in_the_ui(bundle):
    missing = [name for name in (f'"{ui.SHARE_PARAM}"', f'"{ui.SHARE_TAG}"') if name not in bundle]
    assert not missing, f"MLflow's UI no longer knows {missing}: update studies/tracking/_ui_compat.py"


def test_the_facets_and_ui_state_a_shared_view_restores(bundle):
    # The UI's own lists: the search facets it keeps in the URL, and the UI state it persists.
    facets = (
        '["searchFilter","orderByKey","orderByAsc","startTime","lifecycleFilter","modelVersionFilter","datasetsFilter"]'
    )
    assert facets in bundle, "the runs page's search facets changed: update studies/tracking/_ui_compat.py"
    assert all(f'"{name}"' in facets for name in ui.FACETS)
    at = bundle.find('["selectedColumns","columnOrder"')
    assert at >= 0, "the runs page's UI state keys changed"
    state = bundle[at : bundle.find("]", at)]
    assert all(f'"{name}"' in state for name in ui.UI_STATE), "the runs page's UI state keys changed"


def test_the_column_names_and_the_workflow_switch(bundle):
    assert 'e+".`"+t+"`"' in bundle, "the runs table's column names (kind.`key`) changed"
    assert '{ATTRIBUTES:"attributes",PARAMS:"params",METRICS:"metrics",TAGS:"tags"}' in bundle
    assert f'GENAI="genai",e.MACHINE_LEARNING="{ui.WORKFLOW_ML}"' in bundle
    assert f'.get("{ui.WORKFLOW_PARAM}")' in bundle, "the workflow switch is no longer read from the URL"


def test_links_and_server_base():
    url = ui.runs_url("http://127.0.0.1:5000/", "7", "sweeps-studies")
    assert url == (
        "http://127.0.0.1:5000/#/experiments/7/runs?viewStateShareKey=sweeps-studies&workflowType=machine_learning"
    )
    assert ui.server_base("http://bob:p%40ss@mlflow-host:5000/?x=1") == "http://mlflow-host:5000"
    for password in ("p/ss", "p?ss", "p#ss", "p@s/s"):  # unescaped: nothing of it in the link
        assert ui.server_base(f"https://bob:{password}@mlflow-host/base/") == "https://mlflow-host/base"
    assert ui.server_base("sqlite:///mlflow.db") is None and ui.server_base(None) is None
    assert ui.column("metrics", "best_value") == "metrics.`best_value`"
    with pytest.raises(ValueError, match=r"'kind' must be one of \['attributes', 'metrics', 'params', 'tags'\]"):
        ui.column("metric", "x")
