"""Terminal output: tables and listings on stdout (``out``), progress and logs on stderr
(``console``), and the one table layout every command prints with (``Listing``, ``print_table``).

The table rule: a table never cuts or wraps a name, a number or a path. At a width it does not fit,
it moves free text beneath its row, stacks a cell's parts, leaves out its optional columns (and
says so), and at last prints one record per row; a value longer than the terminal is printed whole
on one line (the terminal wraps it, copy and paste get it back intact). On a pipe there is no width
unless ``COLUMNS`` gives one, no colour and no line drawn to a width: ``harness plugins | grep swin``
finds the whole row.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Iterator, Sequence, Union

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

# soft_wrap: rich never breaks a line it prints (a command, a path, a number stays whole on one line)
console = Console(stderr=True, highlight=False, soft_wrap=True)  # progress, logs, warnings, errors
out = Console(highlight=False, soft_wrap=True)  # tables and listings (follows sys.stdout, as CliRunner swaps it)

GAP = "  "  # between two columns


def progress_enabled() -> bool:
    """Bars on a terminal, off in CI logs unless HARNESS_PROGRESS=1."""
    forced = os.environ.get("HARNESS_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false")
    return sys.stderr.isatty()


def progress(transient: bool = False, disable: bool | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=(not progress_enabled()) if disable is None else disable,
    )


def say(text: str, style: str | None = None, to: Console | None = None) -> None:
    """One line of plain text (no markup read), never wrapped by rich: a command or a path in it
    can be pasted as it is. Default: stdout (``out``)."""
    (to or out).print(Text(text, style=style or ""), soft_wrap=True)


def heading(title: str) -> None:
    """A stage's heading on stderr: a rule across a terminal, a plain ``== title ==`` line in a log."""
    if console.is_terminal:
        console.rule(Text(title, style="bold"))
    else:
        say(f"== {title} ==", to=console)


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # numbers: right-aligned
    optional: bool = False  # left out, and said so, when nothing else makes the table fit
    prose: bool = False  # free text: moved beneath its row when the row is too wide


@dataclass(frozen=True)
class Cell:
    """A cell's text in parts: joined by ``sep`` on one line, or one part per line when stacked."""

    parts: tuple[str, ...]
    style: str = ""
    sep: str = " "

    @property
    def text(self) -> str:
        return self.sep.join(p for p in self.parts if p)


def cell(*parts: str, style: str = "", sep: str = " ") -> Cell:
    return Cell(tuple(str(p) for p in parts), style, sep)


CellLike = Union[Cell, str]


@dataclass
class Listing:
    """A table to print with ``print_table``: plain text cells, styles apart (no markup to escape)."""

    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    title: str = ""
    notes: list[str] = field(default_factory=list)
    key_columns: int = 1  # one record per row: these columns head it
    more: str = "a wider terminal shows them"  # where the columns left out can be seen

    def add_row(self, *cells: CellLike) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([c if isinstance(c, Cell) else cell(c) for c in cells])

    def without_empty(self, *headers: str, empty: Sequence[str] = ("", "-")) -> Listing:
        """The table without those of ``headers`` whose every cell is empty (a column nothing has)."""
        drop = {i for i, c in enumerate(self.columns) if c.header in headers
                and all(row[i].text in empty for row in self.rows)}
        return Listing([c for i, c in enumerate(self.columns) if i not in drop],
                       [[x for i, x in enumerate(row) if i not in drop] for row in self.rows],
                       self.title, list(self.notes), self.key_columns, self.more)


def table_width(to: Console) -> int | None:
    """The columns a table may take: the terminal's; a pipe's is unlimited unless COLUMNS says."""
    if to.is_terminal:
        return to.width
    columns = os.environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def print_table(table: Listing, to: Console | None = None, width: int | None = None) -> None:
    """Print ``table`` whole at the width of ``to`` (default stdout), or at ``width``."""
    to = to or out
    for line in table_lines(table, width if width is not None else table_width(to), rule=to.is_terminal):
        to.print(line, soft_wrap=True)


@dataclass(frozen=True)
class _Shape:
    shown: tuple[int, ...]  # the columns in the grid
    below: bool  # prose columns beneath their row
    stacked: bool  # each part of a cell on its own line


def table_lines(table: Listing, width: int | None, rule: bool = False) -> list[Text]:
    """The lines ``table`` prints as at ``width`` (None: unlimited); ``rule``: a line under the header."""
    head = [Text(table.title, style="bold")] if table.title else []
    tail = [Text(n) for n in table.notes]
    for shape in _shapes(table):
        if width is None or _grid_width(table, shape) <= width:
            left_out = [c.header for i, c in enumerate(table.columns) if i not in shape.shown and not c.prose]
            note = [Text(f"not shown at {width} columns: {', '.join(left_out)} ({table.more})", style="dim")] if left_out else []
            return head + _grid(table, shape, rule) + note + tail
    return head + _records(table) + tail


def _shapes(table: Listing) -> Iterator[_Shape]:
    """The layouts to try, the most like a plain table first."""
    every = tuple(range(len(table.columns)))
    inline = tuple(i for i in every if not table.columns[i].prose)
    yield _Shape(every, below=False, stacked=False)
    if inline != every:
        yield _Shape(inline, below=True, stacked=False)
    multipart = any(len(row[i].parts) > 1 for row in table.rows for i in inline)
    if multipart:
        yield _Shape(inline, below=inline != every, stacked=True)
    optional = [i for i in inline if table.columns[i].optional]
    while optional:  # the rightmost optional column first, one at a time
        optional.pop()
        shown = tuple(i for i in inline if not table.columns[i].optional or i in optional)
        yield _Shape(shown, below=inline != every, stacked=multipart)


def _cell_lines(c: Cell, stacked: bool) -> list[str]:
    return ([p for p in c.parts if p] or [""]) if stacked else [c.text]


def _widths(table: Listing, shape: _Shape) -> list[int]:
    return [max([cell_len(table.columns[i].header)] + [cell_len(line) for row in table.rows
                                                        for line in _cell_lines(row[i], shape.stacked)])
            for i in shape.shown]


def _grid_width(table: Listing, shape: _Shape) -> int:
    widths = _widths(table, shape)
    return sum(widths) + len(GAP) * max(0, len(widths) - 1)


def _grid(table: Listing, shape: _Shape, rule: bool) -> list[Text]:
    widths = _widths(table, shape)
    columns = [table.columns[i] for i in shape.shown]
    lines = [_line([Cell((c.header,), style="bold") for c in columns], [c.header for c in columns], columns, widths)]
    if rule:
        lines.append(Text("─" * _grid_width(table, shape), style="dim"))
    tall = shape.stacked and any(len(_cell_lines(row[i], True)) > 1 for row in table.rows for i in shape.shown)
    prose = [i for i, c in enumerate(table.columns) if c.prose and i not in shape.shown]
    for n, row in enumerate(table.rows):
        if tall and n:
            lines.append(Text(""))
        cells = [row[i] for i in shape.shown]
        stacks = [_cell_lines(c, shape.stacked) for c in cells]
        for k in range(max(len(s) for s in stacks)):
            lines.append(_line(cells, [s[k] if k < len(s) else "" for s in stacks], columns, widths))
        lines += [Text("    " + part, style=row[i].style or "dim") for i in prose for part in row[i].parts if part]
    return lines


def _line(cells: Sequence[Cell], texts: Sequence[str], columns: Sequence[Column], widths: Sequence[int]) -> Text:
    line = Text()
    for j, (c, text, column, w) in enumerate(zip(cells, texts, columns, widths)):
        pad = " " * (w - cell_len(text))
        if j:
            line.append(GAP)
        line.append(pad if column.right else "")
        line.append(text, style=c.style)
        line.append("" if column.right or j == len(cells) - 1 else pad)
    line.rstrip()
    return line


def _records(table: Listing) -> list[Text]:
    """One record per row: its key columns on a line, then one ``header  value`` line per field."""
    keys = range(min(table.key_columns, len(table.columns)))
    fields = [i for i in range(len(table.columns)) if i not in keys]
    pad = max((cell_len(table.columns[i].header) for i in fields), default=0)
    lines: list[Text] = []
    for row in table.rows:
        head = Text()
        for j in keys:
            head.append(GAP if j else "")
            head.append(row[j].text, style=row[j].style or "bold")
        lines.append(head)
        for i in fields:
            if row[i].text:
                header = table.columns[i].header
                lines.append(Text.assemble(f"  {header}{' ' * (pad - cell_len(header))}  ", (row[i].text, row[i].style)))
    return lines

