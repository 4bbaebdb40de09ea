"""Where the harness keeps files (``cache_home``) and atomic file writes: a reader (or a crash)
never sees half a file.

Files and folders are created with the permissions the user's umask gives (0644 / 0755 under the
usual 022), like ``open()`` and ``mkdir`` would: a temporary file from ``tempfile`` is 0600, which
would leave checkpoints and results unreadable to colleagues on a shared system.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_home() -> Path:
    """Root of the harness's caches (face caches, the demo data): $HARNESS_CACHE, else
    $XDG_CACHE_HOME/harness, else ~/.cache/harness. The one place this is decided."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harness"


def current_umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    return 0o777 & ~current_umask()


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_name)`` on a temporary file next to ``path``, flush it to disk, then move
    it into place with the umask's permissions. On any error the temporary file is removed and
    ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """``text`` as UTF-8 into ``path``, atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def temp_dir_next_to(path: Path) -> Path:
    """An empty folder ``.<name>.<random>.tmp`` beside ``path``, with the umask's permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, default_dir_mode())
    return tmp


def old_dir_for(path: Path) -> Path:
    """Where ``replace_dir`` parks the previous folder for the moment between its two renames."""
    path = Path(path)
    return path.parent / f".{path.name}.old"


def replace_dir(new: Path, path: Path) -> None:
    """Put the complete folder ``new`` at ``path``, replacing any folder there.

    POSIX cannot rename a folder over a non-empty one, so the old folder is first renamed to
    ``.<name>.old``, then ``new`` to ``path``, then the old one is removed. At every instant either
    ``path`` or ``.<name>.old`` is a complete folder: ``recover_dir`` finishes the job after a crash.
    """
    new, path = Path(new), Path(path)
    old = old_dir_for(path)
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(path, old)
        from harness.common import faults

        faults.point("files.replace_dir")
    os.rename(new, path)
    fsync_dir(path.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(path: Path) -> list[Path]:
    """Finish or undo an interrupted ``replace_dir`` / ``temp_dir_next_to`` for ``path``: bring back
    ``.<name>.old`` when ``path`` is missing, and remove stale temporaries (beside ``path`` and
    inside it). Returns what was removed. Call it only when no other process writes ``path``."""
    path = Path(path)
    removed: list[Path] = []
    old = old_dir_for(path)
    if old.exists():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
        else:
            try:
                os.rename(old, path)
            except FileNotFoundError:
                pass  # another process (a DDP rank) put it back first
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
            removed.append(stale)
    if path.is_dir():
        for stale in path.glob(".*.tmp"):  # half-written files of an atomic_write killed mid-way
            if stale.is_file():
                stale.unlink(missing_ok=True)
                removed.append(stale)
    return removed
