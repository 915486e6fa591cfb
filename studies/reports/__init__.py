"""A sweep's research report (HTML, Markdown with PNGs, CSVs) from the storage alone, and the
figures and numbers it is made of (the MLflow dashboard draws the same figures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from studies.reports import figures
    from studies.reports.build import MODEL_FILE, ReportFiles, build_report
    from studies.reports.data import divergence_boundary, gather, importances_of
    from studies.reports.files import prepare_folder, write_atomic

__all__ = [
    "MODEL_FILE",
    "ReportFiles",
    "build_report",
    "divergence_boundary",
    "figures",
    "gather",
    "importances_of",
    "prepare_folder",
    "write_atomic",
]

__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
