"""The leaderboard's layout as data: which tables, which datasets and groups, which metric columns.

``harness/reference/protocol.json`` lays out the paper's tables; ``harness.reporting.leaderboard`` renders
whatever a protocol lays out and names no dataset, group, blender or metric itself. A dataset
that ships with a plugin adds its display name, its groups and tables of its own with an extra
protocol file (``harness leaderboard --protocol FILE``), merged over the shipped one by
``merge_protocols``: datasets and metric columns are added (same name: replaced), tables are
appended (same ``id``: replaced in place).

A table is one of two kinds:

* ``groups``: one dataset, one column per group (e.g. FF++'s four methods), one sub-table per
  (level, compression);
* ``datasets``: one column per dataset (its ``all`` group), one sub-table per level.

Its lead columns are ``[title, field]`` pairs; a field is ``method``, ``blender``, ``backbone``
or ``option:KEY`` (the run's blender option KEY shown as a switch: on, off or "default").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.common.errors import HarnessError

PROTOCOL_PATH = Path(__file__).resolve().parents[1] / "reference" / "protocol.json"
TABLE_KINDS = ("groups", "datasets")
LEAD_FIELDS = ("method", "blender", "backbone")
OPTION_PREFIX = "option:"


class ProtocolError(HarnessError, ValueError):
    """A protocol file that cannot lay out a leaderboard; the message names the file and the key."""


@dataclass(frozen=True)
class TableSpec:
    """One leaderboard table (see the module docstring for the fields' meaning)."""

    id: str
    kind: str
    title: str
    columns: tuple[tuple[str, str], ...]
    lead: tuple[tuple[str, str], ...]
    metric: tuple[str, str] = ("auc", "AUC")
    dataset: str | None = None
    intro: tuple[str, ...] = ()
    where: str = ""
    select_equal: tuple[tuple[str, str], ...] = ()
    select_not_false: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    empty: str = "*No results yet.*"


@dataclass(frozen=True)
class BoardProtocol:
    """Everything the renderer needs to know about datasets, metrics and tables."""

    titles: Mapping[str, str]  # dataset name -> display name, in display order
    groups: tuple[str, ...]  # groups shown first, in this order (the rest sorted, then "all")
    percent: frozenset[str]  # metrics stored as fractions, printed as percentages
    score_columns: tuple[tuple[str, str], ...]
    pixel_columns: tuple[tuple[str, str], ...]
    tables: tuple[TableSpec, ...]
    texts: Mapping[str, str] = field(default_factory=dict)
    spread: tuple[str, str] = ("auc", "AUC")  # the video-level metric whose spread over seeds is shown
    short_names: Mapping[str, str] = field(default_factory=dict)  # group -> the paper's short name (DF, F2F ...)

    def text(self, key: str, default: str) -> str:
        return self.texts.get(key, default)


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise ProtocolError(f"{where}: expected a list of [name, title] pairs, got {value!r}")
    return tuple((str(a), str(b)) for a, b in value)


def _lead_field(name: str, where: str) -> str:
    if name in LEAD_FIELDS or (name.startswith(OPTION_PREFIX) and len(name) > len(OPTION_PREFIX)):
        return name
    raise ProtocolError(f"{where}: unknown field {name!r}; use one of {', '.join(LEAD_FIELDS)} or option:KEY")


def _table(raw: Mapping[str, Any], where: str) -> TableSpec:
    try:
        kind, table_id, title = str(raw["kind"]), str(raw["id"]), str(raw["title"])
    except KeyError as exc:
        raise ProtocolError(f"{where}: a table needs {exc.args[0]!r}") from None
    where = f"{where} {table_id!r}"
    if kind not in TABLE_KINDS:
        raise ProtocolError(f"{where}: kind must be one of {', '.join(TABLE_KINDS)}, got {kind!r}")
    if kind == "groups" and not raw.get("dataset"):
        raise ProtocolError(f"{where}: a 'groups' table names its 'dataset'")
    lead = tuple((t, _lead_field(f, f"{where} lead")) for t, f in _pairs(raw.get("lead", []), f"{where} lead"))
    select = raw.get("select", {})
    return TableSpec(
        id=table_id, kind=kind, title=title, lead=lead,
        columns=_pairs(raw.get("columns", []), f"{where} columns"),
        metric=_pairs([raw.get("metric", ["auc", "AUC"])], f"{where} metric")[0],
        dataset=raw.get("dataset"),
        intro=tuple(str(t) for t in raw.get("intro", [])),
        where=str(raw.get("where", "")),
        select_equal=tuple(sorted((str(k), str(v)) for k, v in select.get("equal", {}).items())),
        select_not_false=tuple(_lead_field(f, f"{where} select") for f in select.get("not_false", [])),
        order_by=tuple(_lead_field(f, f"{where} order_by") for f in raw.get("order_by", [])),
        empty=str(raw.get("empty", "*No results yet.*")),
    )


def parse_protocol(data: Mapping[str, Any], source: str = "protocol") -> BoardProtocol:
    """A ``BoardProtocol`` from a protocol dict (``source`` names it in errors)."""
    datasets = data.get("datasets", {})
    if not isinstance(datasets, Mapping):
        raise ProtocolError(f"{source}: 'datasets' must map dataset names to {{title, groups}}")
    metrics = data.get("metrics", {})
    groups = dict.fromkeys(str(g) for entry in datasets.values() for g in entry.get("groups", []))
    return BoardProtocol(
        titles={str(name): str(entry.get("title", name)) for name, entry in datasets.items()},
        groups=tuple(groups),
        percent=frozenset(str(m) for m in metrics.get("percent", [])),
        score_columns=_pairs(metrics.get("score_columns", []), f"{source} metrics.score_columns"),
        pixel_columns=_pairs(metrics.get("pixel_columns", []), f"{source} metrics.pixel_columns"),
        tables=tuple(_table(t, f"{source} table") for t in data.get("tables", [])),
        texts={str(k): str(v) for k, v in data.get("texts", {}).items()},
        spread=_pairs([metrics.get("spread", ["auc", "AUC"])], f"{source} metrics.spread")[0],
        short_names={str(k): str(v) for k, v in data.get("short_names", {}).items()},
    )


def _merge_pairs(base: list[Any], extra: list[Any]) -> list[Any]:
    """``base`` pairs with ``extra``'s added: a pair whose name is already there replaces it."""
    names = {p[0]: i for i, p in enumerate(base)}
    out = list(base)
    for pair in extra:
        if pair[0] in names:
            out[names[pair[0]]] = pair
        else:
            out.append(pair)
    return out


def merge_protocols(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s datasets, metrics, texts and tables added (same name or id: replaced)."""
    out = json.loads(json.dumps(base))  # a deep copy: the shipped dict is never changed
    for name, entry in extra.get("datasets", {}).items():
        out.setdefault("datasets", {})[name] = {**out.get("datasets", {}).get(name, {}), **entry}
    metrics = out.setdefault("metrics", {})
    for key, value in extra.get("metrics", {}).items():
        if key == "spread":
            metrics[key] = value
        elif key == "percent":
            metrics[key] = sorted(set(metrics.get(key, [])) | set(value))
        else:
            metrics[key] = _merge_pairs(metrics.get(key, []), value)
    out.setdefault("texts", {}).update(extra.get("texts", {}))
    out.setdefault("short_names", {}).update(extra.get("short_names", {}))
    tables = [[t.get("id"), t] for t in out.get("tables", [])]
    out["tables"] = [t for _, t in _merge_pairs(tables, [[t.get("id"), t] for t in extra.get("tables", [])])]
    return out


def _read(path: Path) -> dict[str, Any]:
    from harness.common.bounded import InputFileError, read_json

    try:
        data = read_json(Path(path), "protocol file")
    except InputFileError as exc:
        raise ProtocolError(str(exc)) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"protocol file {path}: expected a JSON object")
    return data


@lru_cache(maxsize=1)
def _shipped() -> BoardProtocol:
    return parse_protocol(_read(PROTOCOL_PATH), str(PROTOCOL_PATH))


def load_protocol(extra: Iterable[Path] = (), path: Path = PROTOCOL_PATH) -> BoardProtocol:
    """The protocol of ``path`` (default: the shipped one) with each ``extra`` file merged over it."""
    extra = list(extra)
    if not extra and Path(path) == PROTOCOL_PATH:
        return _shipped()
    data = _read(path)
    for more in extra:
        data = merge_protocols(data, _read(more))
        parse_protocol(data, str(more))  # name the file that broke it
    return parse_protocol(data, str(path))
