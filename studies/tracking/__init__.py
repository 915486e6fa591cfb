"""MLflow as a view of the storage: a writer process off the training path, the runs it
writes (a parent per study, a nested child per trial), the parents' dashboard (descriptions,
figures, shared views) and the links that open it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from studies.tracking._ui_compat import server_base
    from studies.tracking.dashboard import FIGURE_SECONDS, SHARE_TAG, STUDIES_VIEW, link_lines
    from studies.tracking.tracker import TAKEOVER_SECONDS, Tracker
    from studies.tracking.writer import MlflowStatus, MlflowWriter

__all__ = [
    "FIGURE_SECONDS",
    "MlflowStatus",
    "MlflowWriter",
    "SHARE_TAG",
    "STUDIES_VIEW",
    "TAKEOVER_SECONDS",
    "Tracker",
    "link_lines",
    "server_base",
]

__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
