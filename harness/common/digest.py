"""One way to hash: a file's bytes, or a JSON-able value in canonical form.

Every identity the harness records (model bundles, imported files, test media, evaluation ids) is
built from these, so the same content always gives the same digest, on any machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

_BLOCK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks (memory stays flat for large files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_parts(parts: Iterable[bytes]) -> str:
    """sha256 (hex) of the concatenation of ``parts``, streamed (one part in memory at a time)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def sha256_json(value: Any) -> str:
    """sha256 (hex) of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
