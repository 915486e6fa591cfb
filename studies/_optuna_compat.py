"""The Optuna names this project uses that Optuna does not export publicly, in one place.

``tests/studies/test_optuna_compat.py`` fails loudly when an upgrade renames or changes
them; nothing else imports from Optuna's private modules (``worker.py`` still imports the
heartbeat helpers directly and may switch to these).
"""

from __future__ import annotations

from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.storages.journal._storage import JournalOperation

__all__ = ["JournalOperation", "get_heartbeat_thread", "is_heartbeat_enabled"]
