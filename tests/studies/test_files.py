"""The project's own files: written whole through a temporary file, never through a link."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studies.reports.files import prepare_folder, write_atomic


def test_a_write_replaces_a_link_and_leaves_its_target_alone(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.html").symlink_to(outside)
    write_atomic(str(folder / "report.html"), "<p>new</p>")
    assert outside.read_text() == "precious"
    assert not (folder / "report.html").is_symlink()
    assert (folder / "report.html").read_text() == "<p>new</p>"
    assert oct((folder / "report.html").stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(folder)) == ["report.html"]  # no temporary file left


def test_a_dangling_link_is_replaced_not_followed(tmp_path):
    (tmp_path / "a.csv").symlink_to(tmp_path / "elsewhere" / "b.csv")
    write_atomic(str(tmp_path / "a.csv"), b"x,y\n")
    assert (tmp_path / "a.csv").read_bytes() == b"x,y\n" and not (tmp_path / "elsewhere").exists()


_FAILING_WRITE = """
import resource, signal, sys
from studies.reports.files import write_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file size limit: the write fails, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    write_atomic(sys.argv[1], b"x" * 5000)
except ValueError as exc:
    print(exc)
"""


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(tmp_path):
    path = tmp_path / "trials.csv"
    path.write_text("old,complete\n")
    r = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"can't write {str(path)!r} (File too large)")
    assert path.read_text() == "old,complete\n"
    assert os.listdir(tmp_path) == ["trials.csv"]


def test_folders_that_are_files_or_links_are_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"'--out' must be a folder, but .*afile' is a file"):
        prepare_folder(str(tmp_path / "afile"))
    with pytest.raises(ValueError, match="a part of its path is a file"):
        prepare_folder(str(tmp_path / "afile" / "sub"))
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "figures").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match=r"'--out': the folder .*figures' is a symbolic link"):
        prepare_folder(str(tmp_path / "out"), subfolders=("figures",))
    with pytest.raises(ValueError, match="is a folder"):
        write_atomic(str(tmp_path / "out"), "x")
    # Checking creates nothing; preparing creates what is missing.
    prepare_folder(str(tmp_path / "new"), subfolders=("figures",), create=False)
    assert not (tmp_path / "new").exists()
    prepare_folder(str(tmp_path / "new"), subfolders=("figures",))
    assert (tmp_path / "new" / "figures").is_dir()


def test_a_device_a_pipe_or_a_socket_at_the_path_is_refused_never_replaced(tmp_path):
    import socket
    import stat

    from studies.errors import SweepsError

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path in (fifo, sock_path):
            with pytest.raises(SweepsError, match="not a regular file"):
                write_atomic(str(path), "x")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    finally:
        sock.close()
    # /dev/null as --out: the machine's device stays a device
    with pytest.raises(SweepsError, match="not a regular file"):
        write_atomic("/dev/null", "x")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_a_written_file_gets_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / "f.txt"), "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640
