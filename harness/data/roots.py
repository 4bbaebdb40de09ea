"""The data root: the folder holding one folder per dataset, handed to dataset plugins."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ENV_DATA = "HARNESS_DATA"


@contextmanager
def data_root(root: str | Path | None) -> Iterator[None]:
    """Point every dataset plugin at ``root`` through $HARNESS_DATA while they are opened (works for
    third-party plugins too), then put the variable back as it was. ``None`` changes nothing."""
    if root is None:
        yield
        return
    old = os.environ.get(ENV_DATA)
    os.environ[ENV_DATA] = str(Path(root).expanduser())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_DATA, None)
        else:
            os.environ[ENV_DATA] = old
