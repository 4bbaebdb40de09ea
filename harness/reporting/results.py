"""The results file of one run: environment capture, validation, writing, loading (group metrics:
harness/evaluation/groups.py).

One JSON file per run named ``<YYYY-MM-DD>_<run_id>.json``, under ``runs/results/`` (what `harness run`
writes) or ``leaderboards/results/`` (published with `harness leaderboard --publish`), checked
against ``harness/schemas/results.schema.json``. Metric values are fractions in [0, 1]; NaN (an
undefined metric) is written as ``null`` so the files stay strict JSON.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import math
import os
import platform
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from harness.common.bounded import InputFileError, read_json
from harness.common.errors import HarnessError
from harness.common.files import atomic_write_text
from harness.extend.types import ALL

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "results.schema.json"
SCHEMA_VERSION = 1
REAL_GROUP = "original"  # VideoRecord.method of real videos
#: Below this many reals or fakes in a group, a bootstrap CI is marked unreliable in every table.
SMALL_N = 10
#: the mark tables print after a CI from fewer than SMALL_N reals or fakes (explained under each table)
SMALL_N_MARK = f"n<{SMALL_N}"
SMALL_N_NOTE = f"{SMALL_N_MARK}: fewer than {SMALL_N} reals or fakes in the group, the CI is unreliable"


def ci_note(metric: Mapping[str, Any] | None) -> str:
    """What a table prints after a metric's CI: ``""``, ``"n<10"`` (few reals or fakes: the CI is
    unreliable) or ``"no CI (1 real)"`` (the evaluator gave none, and why). Results recorded before
    the class counts were stored get no mark."""
    if not metric:
        return ""
    counts = {k: metric.get(f"n_{k}") for k in ("real", "fake")}
    if metric.get("no_ci"):
        ones = [f"1 {k}" for k, c in counts.items() if c == 1]
        return f"no CI ({' and '.join(ones)})" if ones else "no CI"
    present = [c for c in counts.values() if isinstance(c, int) and c > 0]
    return SMALL_N_MARK if present and min(present) < SMALL_N else ""

#: distribution names (first one installed wins) of the packages a result records
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "timm": ("timm",),
    "numpy": ("numpy",),
    "albumentations": ("albumentations",),
    "harness": ("deepfake-harness",),
    "cv2": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
    "dlib": ("dlib-bin", "dlib"),  # not a plugin: the library's distributions
    "sklearn": ("scikit-learn",),
    "av": ("av",),
}


class ResultsError(HarnessError, ValueError):
    """A results dict or file does not match the schema; the message names the file and the field."""


# ------------------------------------------------------------------------------------------------
# Environment
# ------------------------------------------------------------------------------------------------
def _version(names: Iterable[str]) -> str | None:
    for name in names:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            continue
    return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the harness source checkout; nulls when not run from a git checkout.

    Only trusted when the checkout's top level holds this very ``harness`` package, so an installed
    copy inside some other repository (a venv in a project) does not report that project's commit.
    """
    top = _git("rev-parse", "--show-toplevel")
    if top is None or not (Path(top.strip()) / "harness").resolve() == Path(__file__).resolve().parents[1]:
        return {"commit": None, "dirty": None}
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": None if status is None else bool(status.strip()),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def hardware() -> dict[str, Any]:
    """CPU model and count, memory, torch's CPU kernels and threads, and the CUDA device torch sees (null without one)."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "gpu": None,
        "cuda": None,
        "gpu_count": 0,
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gb"] = None
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
            info["gpu_count"] = torch.cuda.device_count()
    except Exception:  # no torch, or a broken driver: the run itself will say more
        pass
    return {**info, **_cpu_kernels()}


def _cpu_kernels() -> dict[str, Any]:
    """torch's CPU kernel set and threads: the last bits of a CPU run depend on them (common/kernels.py)."""
    from harness.common.kernels import capability

    try:
        import torch

        return {"cpu_kernels": capability(), "threads": torch.get_num_threads()}
    except Exception:  # noqa: BLE001 - no torch, or one without the query: nothing to record
        return {}


def collect_environment() -> dict[str, Any]:
    """``{"versions": ..., "git": ..., "hardware": ...}`` ready to merge into a results dict."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, names in _DISTRIBUTIONS.items():
        versions[key] = _version(names)
    if versions["harness"] is None:  # running from a source tree that was never installed
        from harness import __version__

        versions["harness"] = __version__
    return {"versions": versions, "git": git_state(), "hardware": hardware()}


# ------------------------------------------------------------------------------------------------
# Validation, writing, loading
# ------------------------------------------------------------------------------------------------
def schema() -> dict[str, Any]:
    """The results JSON schema shipped with the harness."""
    from harness.common.schema_check import load_schema

    return load_schema(SCHEMA_PATH.name)


def to_json_ready(value: Any) -> Any:
    """A deep copy with NaN/inf as None, numpy scalars/arrays as Python values, tuples as lists, Paths as str."""
    if isinstance(value, Mapping):
        return {str(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def problems(results: Any) -> list[str]:
    """Every way ``results`` breaks the schema, one ``  - field/path: message`` line each."""
    from harness.common.bounded import check_depth
    from harness.common.schema_check import describe, schema_errors

    check_depth(results, "the results")  # jsonschema and to_json_ready recurse
    return describe(schema_errors(to_json_ready(results), SCHEMA_PATH.name)) + _inverted_intervals(results)


def validate(results: Mapping[str, Any], source: str = "results") -> None:
    """Check a results dict against the schema; raise ResultsError listing every problem by field."""
    found = problems(results)
    if found:
        raise ResultsError(
            f"{source} does not match the results schema ({SCHEMA_PATH.name}, version {SCHEMA_VERSION}):\n"
            + "\n".join(found)
        )


def read_results_file(path: Path) -> dict[str, Any]:
    """A results file that holds the schema (bounded read); else ResultsError in ONE line naming the
    file and its first bad field: what `harness leaderboard`, `--publish` and `harness report` refuse."""
    from harness.common.bounded import InputFileError, read_json

    try:
        data = read_json(Path(path), "results file")
    except InputFileError as exc:
        raise ResultsError(f"{exc}; fix or remove the file") from None
    if not isinstance(data, dict):
        raise ResultsError(f"results file {path} holds a JSON {type(data).__name__}, not an object; fix or remove the file")
    found = problems(data)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ResultsError(f"results file {path} breaks the results schema at {found[0].strip()[2:]}{more}; "
                           "fix or remove the file")
    return data


def _inverted_intervals(results: Mapping[str, Any]) -> list[str]:
    """Metrics whose interval is inverted, does not hold the value, or belongs to no value (an
    undefined metric has no interval): what the schema cannot express."""
    found = []
    number = (int, float)
    for where, metric in _metrics(results):
        # NaN is "undefined" (rendered n/a), like null: nothing to order
        low, value, high = (None if isinstance(v, float) and math.isnan(v) else v
                            for v in (metric.get("ci_low"), metric.get("value"), metric.get("ci_high")))
        if value is None and (isinstance(low, number) or isinstance(high, number)):
            found.append(f"  - {where}: value undefined (null or NaN) but an interval [{low}, {high}] is given")
        elif isinstance(low, number) and isinstance(high, number) and low > high:
            found.append(f"  - {where}: ci_low {low} > ci_high {high}")
        elif isinstance(value, number) and isinstance(low, number) and isinstance(high, number) and not low <= value <= high:
            found.append(f"  - {where}: value {value} outside its interval [{low}, {high}]")
    return found


def _metrics(results: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(``datasets/<d>/groups/<g>/<level>/<name>``, metric) for every metric object of a results dict,
    skipping whatever is not shaped as the schema says (validation reports that)."""
    def items(value: Any) -> Iterable[tuple[str, Any]]:
        return value.items() if isinstance(value, Mapping) else ()

    groups = ((d, g, levels) for d, entry in items(results.get("datasets"))
              for g, levels in items(entry.get("groups") if isinstance(entry, Mapping) else None))
    metrics = ((f"datasets/{d}/groups/{g}/{level}/{name}", metric)
               for d, g, levels in groups for level, named in items(levels) for name, metric in items(named))
    return [(where, metric) for where, metric in metrics if isinstance(metric, Mapping)]


def numbers(results: Mapping[str, Any]) -> dict[str, Any]:
    """What a results file measures, as JSON reads it back: each dataset's block without what a rerun
    of the same inputs may word or time differently (the seconds taken, failure messages, notes)."""
    def measured(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: measured(v) for k, v in value.items() if k not in _NOT_NUMBERS}
        return value

    datasets = results.get("datasets") or {}
    return to_json_ready({name: measured(block) for name, block in datasets.items()} if isinstance(datasets, Mapping) else {})


_NOT_NUMBERS = {"seconds", "failures", "notes"}
#: looked at first when two sets of numbers differ: the message names the headline number
_HEADLINE = ("groups", "all", "video", "auc", "value")


def first_difference(a: Any, b: Any, where: str = "datasets") -> str | None:
    """The path of the first value that differs between two ``numbers`` (None when equal), for a message."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=lambda k: (k not in _HEADLINE, _HEADLINE.index(k) if k in _HEADLINE else 0, str(k))):
            if key not in a or key not in b:
                return f"{where}/{key}"
            found = first_difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    return None if a == b else f"{where} ({a} vs {b})"


def results_filename(results: Mapping[str, Any]) -> str:
    """``<YYYY-MM-DD>_<run_id>.json`` (both fields are schema-checked, so safe in a path)."""
    return f"{str(results['created'])[:10]}_{results['run_id']}.json"


def dumps(results: Mapping[str, Any]) -> str:
    """Canonical text of a results dict: strict JSON, sorted keys, indent 2, trailing newline."""
    return json.dumps(to_json_ready(results), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_results(results: Mapping[str, Any], directory: Path) -> Path:
    """Validate ``results`` and write it atomically to ``directory/<date>_<run_id>.json``.

    One file per run id, like the run folder: results of an earlier date for the same run id (the
    same configuration, redone) are replaced, so a rerun never shows up twice in the leaderboard."""
    ready = to_json_ready(results)
    validate(ready, source=f"results of run {results.get('run_id')!r}")
    directory = Path(directory)
    target = atomic_write_text(directory / results_filename(ready), dumps(ready))
    for older in files_of_run(directory, str(ready["run_id"])):
        if older != target:
            older.unlink()
    return target


def files_of_run(directory: Path, run_id: str) -> list[Path]:
    """The results files of ``run_id`` in ``directory`` (``<date>_<run_id>.json``, any date)."""
    same_run = re.compile(r"\d{4}-\d{2}-\d{2}_" + re.escape(run_id) + r"\.json")
    return sorted(p for p in Path(directory).glob("*.json") if same_run.fullmatch(p.name))


def load_results(directory: Path, strict: bool = False) -> list[dict[str, Any]]:
    """Every valid results file in ``directory`` (sorted by file name). Invalid files are skipped
    with a warning that names the file and the problem; ``strict``: the first one raises
    ResultsError in one line (`harness leaderboard` renders nothing from a folder holding one)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"results directory {directory} does not exist; run `harness run` to create results "
            "or pass the folder that holds them (--results DIR)"
        )
    loaded = []
    for path in sorted(directory.glob("*.json")):
        if strict:
            loaded.append(read_results_file(path))
            continue
        try:
            results = read_json(path, "results file")
            if not isinstance(results, dict):
                raise ResultsError(f"{path} holds a JSON {type(results).__name__}, not an object")
            validate(results, source=str(path))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ResultsError, InputFileError) as exc:
            warnings.warn(f"skipping results file {path}: {exc}", stacklevel=2)
            continue
        loaded.append(results)
    return loaded


__all__ = [
    "ALL",
    "ResultsError",
    "collect_environment",
    "dumps",
    "files_of_run",
    "load_results",
    "numbers",
    "problems",
    "read_results_file",
    "results_filename",
    "schema",
    "to_json_ready",
    "validate",
    "write_results",
]
