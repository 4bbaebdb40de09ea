"""Bounded readers for the files a user hands the harness (JSON configs, results, state, CSV lists).

A file of endless bytes (``/dev/zero``) or JSON nested thousands deep must be one line naming the
file, never a MemoryError or RecursionError: every read stops at ``max_bytes`` and every parsed
document is checked for nesting before anything walks it recursively (jsonschema, to_json_ready).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from harness.common.errors import HarnessError

#: a results file with 1000 listed failures is well under 1 MiB; a run config is a few KiB
MAX_JSON_BYTES = 16 * 1024 * 1024
#: the deepest a harness JSON file nests is about 7 (datasets/<d>/groups/<g>/<level>/<metric>/value)
MAX_JSON_DEPTH = 64
#: a test CSV of a million rows is ~100 MB
MAX_CSV_BYTES = 256 * 1024 * 1024


class InputFileError(HarnessError, ValueError):
    """A file too large, too deeply nested or unreadable; the one-line message names it."""


def read_bounded_text(path: Path, what: str, max_bytes: int = MAX_JSON_BYTES, encoding: str = "utf-8") -> str:
    """The UTF-8 text of ``path`` (at most ``max_bytes``; a longer file or stream is refused)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputFileError(f"{what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputFileError(f"{what} {path} is larger than {max_bytes // (1024 * 1024)} MiB; "
                             "pass the file the harness wrote, not a stream or another file")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def check_depth(value: Any, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a document nested deeper than ``max_depth`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise InputFileError(f"{what} nests deeper than {max_depth} levels; it is not a file the harness wrote")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def loads_bounded(text: str, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that answers deep nesting and bad JSON with one InputFileError line."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InputFileError(f"{what} nests deeper than {max_depth} levels; it is not a file the harness wrote") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    check_depth(value, what, max_depth)
    return value


def read_json(path: Path, what: str = "", max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON file read within bounds; ``what`` names it in messages (e.g. ``--config``), and each
    message says which bound or rule the file broke (too large, nested too deep, a byte-order mark)."""
    label = f"{what} {path}".strip()
    text = read_bounded_text(Path(path), what or "file", max_bytes)
    if text.startswith("\ufeff"):  # what some Windows editors write; JSON (RFC 8259) forbids it
        raise InputFileError(f"{label} starts with a byte-order mark: save it as UTF-8 without BOM")
    return loads_bounded(text, label, max_depth)


def read_jsonl(path: Path, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines log, one per line. A partial last line (a kill or a full disk
    during a write) and any other unreadable line are dropped, with one ``warn`` line naming the file."""
    records: list[dict[str, Any]] = []
    dropped: list[int] = []
    partial = False
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif line.endswith("\n"):
                dropped.append(number)
            else:
                partial = True
    if warn and (partial or dropped):
        what = ["its partial last line (a write cut short)"] if partial else []
        what += [f"{len(dropped)} unreadable line(s) (first: line {dropped[0]})"] if dropped else []
        warn(f"{path}: dropped {' and '.join(what)}")
    return records


def drop_partial_tail(path: Path) -> bool:
    """Cut an unterminated last line off a JSON-lines file, so appending starts on a line of its own.
    True when something was cut."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb+") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        if size == 0:
            return False
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return False
        block = min(size, 1 << 20)  # a log line is far shorter than 1 MiB
        handle.seek(size - block)
        tail = handle.read(block)
        cut = tail.rfind(b"\n")
        handle.truncate(size - block + cut + 1 if cut >= 0 else (0 if block == size else size))
    return True
