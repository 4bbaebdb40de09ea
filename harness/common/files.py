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
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from harness.common.errors import HarnessError


def cache_home() -> Path:
    """Root of the harness's caches (face caches, the demo data): $HARNESS_CACHE, else
    $XDG_CACHE_HOME/harness, else ~/.cache/harness. The one place this is decided."""
    env = os.environ.get("HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "harness"


def safe_name(text: str, *, ascii_only: bool = False, squeeze: bool = False) -> str:
    """``text`` as one file or folder name: every character but letters, digits and ``-_.`` becomes
    ``_``. The face cache (and plugins) use it as it is; a run folder's per-dataset files use
    ``ascii_only`` (ASCII letters and digits alone) and ``squeeze`` (a run of replaced characters is
    one ``_``; leading and trailing ``.`` and ``_`` dropped). Folders of both rules exist on disk, so
    neither rule changes."""
    out: list[str] = []
    replaced = False
    for c in text:
        if (c.isalnum() and (c.isascii() or not ascii_only)) or c in "-_.":
            out.append(c)
            replaced = False
        elif not (squeeze and replaced):
            out.append("_")
            replaced = True
    name = "".join(out)
    return name.strip("._") if squeeze else name


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


def replace_dir(new: Path, path: Path, old: Path | None = None) -> None:
    """Put the complete folder ``new`` at ``path``, replacing any folder there.

    POSIX cannot rename a folder over a non-empty one, so the old folder is first renamed to
    ``.<name>.old`` (or ``old``), then ``new`` to ``path``, then the old one is removed. At every
    instant either ``path`` or the old name is a complete folder: ``recover_dir`` finishes the job
    after a crash.
    """
    new, path = Path(new), Path(path)
    old = Path(old) if old is not None else old_dir_for(path)
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


# ------------------------------------------------------------------------------------------------
# Outputs the user names (--out and the like): never destroy a file that is already there
# ------------------------------------------------------------------------------------------------
class OutputError(HarnessError, ValueError):
    """A user-named output that cannot be written without losing what is there, or at all; one line."""


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a dangling link counts: it is in the way)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def unwritable_reason(path: Path, inside: bool = False) -> str | None:
    """Why ``path`` cannot be created (a parent is a file, the folder it goes in is read-only), or
    None. ``inside``: the harness writes files into the folder ``path`` (else it creates or replaces
    ``path`` itself, which needs its parent). ``os.access`` also sees a read-only mount as root."""
    path = _absolute(path)
    found = _first_existing(path)
    if found != path and not found.is_dir():
        return f"is inside {found}, which is a file"
    folder = found if (found != path or inside) else path.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot be written: the folder {folder} is read-only (or not yours)"
    return None


def _input_clash(path: Path, inputs: Sequence[Path]) -> str | None:
    """How ``path`` overlaps one of the command's inputs (is it, is inside it, contains it), or None."""
    target = Path(path).expanduser().resolve()
    for given in inputs:
        source = Path(given).expanduser().resolve()
        if target == source:
            return f"is the input {given}"
        if source in target.parents:
            return f"is inside the input {given}"
        if target in source.parents:
            return f"contains the input {given}"
    return None


def _is_empty(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():
        return not any(os.scandir(path))
    return path.is_file() and not path.is_symlink() and path.stat().st_size == 0


def check_output(path: Path, option: str, *, folder: bool, force: bool = False, inputs: Sequence[Path] = (),
                 replaceable: Callable[[Path], bool] | None = None, force_flag: str | None = "--force") -> None:
    """Refuse, in one line (``OutputError``), before any work: an output that is, holds or sits in
    an input (never, even with ``force``); one under a file or in a read-only folder; a file where a
    folder is asked or the reverse; an existing file or non-empty folder, unless ``force`` or
    ``replaceable(path)`` (a file the harness itself wrote, such as a generated leaderboard).
    ``force_flag``: how the command spells ``force`` (None: it has none)."""
    path = Path(path)
    kind = "a folder" if folder else "a file"
    clash = _input_clash(path, inputs)
    if clash:
        raise OutputError(f"{option} {path} {clash}; an output never replaces or mixes with its input: choose another path")
    reason = unwritable_reason(path)
    if reason:
        raise OutputError(f"{option} {path} {reason}; choose {kind} path in a writable folder (nothing was written)")
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() != folder:
        other = "a folder" if path.is_dir() else "a file"
        raise OutputError(f"{option} {path} is {other}, and {kind} is written there; choose {kind} path "
                          f"(--force replaces only {kind} with {kind})")
    if force or _is_empty(path) or (replaceable is not None and replaceable(path)):
        return
    how = f"pass {force_flag} to replace it" if force_flag else "move it away"
    what = "a folder that is not empty" if folder else "an existing file"
    raise OutputError(f"{option} {path} is {what}; {how}, or choose a new path (nothing was written)")


def _write_failed(option: str, path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"{option} {path}: could not be written ({reason}); nothing was changed there: "
                       "free space or choose another path")


@contextmanager
def output_folder(path: Path, option: str, *, force: bool = False, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it becomes ``path`` (with ``force`` it
    replaces what is there, atomically; a file or an unwritable place is refused first: see
    ``check_output``). On any error the temporary folder is removed and ``path`` is left as it was;
    a failed write (a full disk) is one line."""
    from harness.common import faults

    path = Path(path)
    check_output(path, option, folder=True, force=force, inputs=inputs)
    tmp: Path | None = None
    try:
        tmp = temp_dir_next_to(path)
        yield tmp
        faults.point("files.output")
        # a unique name for the folder being replaced: a fixed ``.<name>.old`` could be the user's own
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")) if path.is_dir() else None
        replace_dir(tmp, path, old)
    except OSError as exc:
        raise _write_failed(option, path, exc) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_output_file(path: Path, write: Callable[[str], None], option: str, *, force: bool = False,
                      inputs: Sequence[Path] = (), replaceable: Callable[[Path], bool] | None = None,
                      force_flag: str | None = "--force") -> Path:
    """``write(tmp_name)`` then move it to ``path`` (``atomic_write``), after ``check_output``; a failed
    write (a full disk) is one line and leaves ``path`` as it was."""
    from harness.common import faults

    path = Path(path)
    check_output(path, option, folder=False, force=force, inputs=inputs, replaceable=replaceable, force_flag=force_flag)

    def written(tmp: str) -> None:
        write(tmp)
        faults.point("files.output")

    try:
        return atomic_write(path, written)
    except OSError as exc:
        raise _write_failed(option, path, exc) from exc
