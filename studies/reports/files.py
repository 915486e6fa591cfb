"""Writing the project's own files (reports, figures, CSV, Markdown) so that a crash never
leaves half a file and nothing is ever written through a symbolic link.

A file is written to a temporary file in its folder, forced to disk, and renamed over its
name: readers see the old file or the new one, never a mix; a symbolic link at that name
is replaced by the file (its target is left untouched). A folder that is a link, or a file
where a folder should be, is refused with one ``ValueError`` before anything is written.
"""

from __future__ import annotations

import os

from engine.data.files import write_atomic
from studies.errors import SweepsError

__all__ = ["prepare_folder", "write_atomic"]


def _refuse_link(path: str, what: str) -> None:
    if os.path.islink(path):
        raise SweepsError(
            f"{what} {path!r} is a symbolic link; nothing is written through links: remove it, "
            f"or choose another folder."
        )


def prepare_folder(path: str, *, subfolders: tuple[str, ...] = (), what: str = "'--out'", create: bool = True) -> str:
    """Make sure ``path`` (and each of its ``subfolders``) is a folder we may write into,
    creating what is missing (``create=False``: only check what exists).

    ``path`` itself may be a link to a folder (the user named it); its subfolders may not.

    Raises:
        ValueError: ``path`` or a subfolder is a file, a subfolder is a symbolic link, or a
            folder can't be created (its message names it and says why).
    """
    for folder in (path, *(os.path.join(path, name) for name in subfolders)):
        if folder != path:
            _refuse_link(folder, what + ": the folder")
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise SweepsError(f"{what} must be a folder, but {folder!r} is a file.")
        if not create:
            continue
        try:
            os.makedirs(folder, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise SweepsError(f"{what}: can't create the folder {folder!r}: a part of its path is a file.") from None
        except OSError as exc:
            raise SweepsError(f"{what}: can't create the folder {folder!r} ({exc.strerror}).") from None
    return path
