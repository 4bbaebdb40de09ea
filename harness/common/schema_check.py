"""The one JSON-schema check of the harness: load a shipped schema, list what a document breaks.

Used by the results file (harness/reporting/results.py) and the `harness predict --json` report
(harness/predict/report.py); each decides how to raise.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

#: problems listed in one message; the rest are counted
MAX_LISTED = 20


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """A schema shipped in harness/schemas/ (``name``: e.g. ``results.schema.json``)."""
    text = resources.files("harness").joinpath("schemas", name).read_text(encoding="utf-8")
    return json.loads(text)


def schema_errors(document: Any, name: str) -> list[Any]:
    """Every ``jsonschema.ValidationError`` of ``document`` against schema ``name``, ordered by field."""
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - jsonschema is a declared dependency
        raise ImportError("validating JSON documents needs the 'jsonschema' package: pip install jsonschema") from exc
    validator = jsonschema.Draft202012Validator(load_schema(name))
    return sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))


def describe(errors: list[Any], limit: int = MAX_LISTED) -> list[str]:
    """One ``  - field/path: message`` line per error (the first ``limit``), then how many more."""
    lines = [f"  - {'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit} more")
    return lines
