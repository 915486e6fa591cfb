"""The one place that knows MLflow UI's URLs (MLflow 3.17's bundled UI, read from its JavaScript).

The runs page keeps its search in the URL (``searchFilter``, ``orderByKey``, ``orderByAsc``, ...)
but its columns only in the browser's storage; a *shared view* carries both: the experiment tag
``mlflow.sharedViewState.<key>`` holds the view as JSON, and ``?viewStateShareKey=<key>`` opens it
(what the UI's own "Share" button does). ``workflowType=machine_learning`` opens the training
runs rather than the GenAI pages: in 3.17 that switch, not the experiment's
``mlflow.experimentKind`` tag, decides which pages an experiment opens on.

``tests/studies/test_mlflow_ui.py`` reads the installed bundle and fails if these names go.
"""

from __future__ import annotations

import json
import urllib.parse

__all__ = [
    "server_base",
    "SHARE_PARAM",
    "SHARE_TAG",
    "WORKFLOW_PARAM",
    "WORKFLOW_ML",
    "FACETS",
    "UI_STATE",
    "column",
    "view_state",
    "runs_url",
]

SHARE_PARAM = "viewStateShareKey"  # the runs page's query parameter naming a shared view
SHARE_TAG = "mlflow.sharedViewState."  # + key: the experiment tag holding that view
WORKFLOW_PARAM, WORKFLOW_ML = "workflowType", "machine_learning"  # training runs, not the GenAI pages
# The search facets and the UI state a shared view restores (the UI ignores the view if the URL
# also holds one of the facets).
FACETS = ("searchFilter", "orderByKey", "orderByAsc")
UI_STATE = ("selectedColumns", "runsExpanded")
_KINDS = ("attributes", "params", "metrics", "tags")


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: ``metrics.`best_value```."""
    if kind not in _KINDS:
        raise ValueError(f"'kind' must be one of {sorted(_KINDS)}, but got {kind!r}.")
    return f"{kind}.`{key}`"


def view_state(*, search: str, order_by: str, ascending: bool, columns: list[str]) -> str:
    """A shared view's JSON (the experiment tag's value): a filter, an order and the columns shown."""
    return json.dumps(
        {
            "searchFilter": search,
            "orderByKey": order_by,
            "orderByAsc": ascending,
            "selectedColumns": columns,
            "runsExpanded": {},
        },
        separators=(",", ":"),
    )


def runs_url(base: str, experiment_id: str, share_key: str) -> str:
    """The experiment's runs page opening the shared view ``share_key``, on the training runs.

    >>> runs_url("http://127.0.0.1:5000", "1", "sweeps-studies")
    'http://127.0.0.1:5000/#/experiments/1/runs?viewStateShareKey=sweeps-studies&workflowType=machine_learning'
    """
    query = urllib.parse.urlencode({SHARE_PARAM: share_key, WORKFLOW_PARAM: WORKFLOW_ML})
    return f"{base.rstrip('/')}/#/experiments/{urllib.parse.quote(str(experiment_id))}/runs?{query}"


def server_base(tracking_uri: str | None) -> str | None:
    """An MLflow server's address from its tracking URI, without user, password, query or
    fragment (a link to print); ``None`` if the URI is not a server's (a local store)."""
    if not tracking_uri or not tracking_uri.startswith(("http://", "https://")):
        return None
    # A password may hold '/', '?' or '#' unescaped: it runs to the *last* '@' (as in
    # studies.storage.redaction), where urlsplit would end the host at the first of them.
    scheme, rest = tracking_uri.split("://", 1)
    parts = urllib.parse.urlsplit(f"{scheme}://{rest.rsplit('@', 1)[-1]}")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
