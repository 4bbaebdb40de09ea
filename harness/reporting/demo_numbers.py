"""The demo's numbers as the README quotes them: one marked block, written from the shipped demo
results file (``make demo-artifacts``, benchmarks/demo_artifacts.py) and checked against it
(tests/test_demo_numbers.py), so the README can never quote numbers the shipped run does not hold.

The block names the results file it was written from; every number in it is read from that file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from harness.data.demo import METHOD_TEXT

BEGIN = "<!-- demo-numbers: begin"
END = "<!-- demo-numbers: end -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
_SOURCE = re.compile(r"from (\S+\.json)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class DemoNumbersError(ValueError):
    """The README and the shipped demo results disagree, or one of them is missing."""


def shipped_demo_files(results_dir: Path) -> list[Path]:
    """The results files in ``results_dir`` that come from demo runs (``"demo": true``)."""
    found = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours to judge: `harness leaderboard` refuses a broken file in one line
        if isinstance(data, dict) and data.get("demo") is True:
            found.append(path)
    return found


def _pct(metric: Mapping[str, Any] | None) -> str:
    value = (metric or {}).get("value")
    if not isinstance(value, (int, float)):
        raise DemoNumbersError(f"the demo results have no value for a metric the README quotes ({metric!r})")
    return f"{100 * value:.1f}"


def _detection(groups: Mapping[str, Any]) -> str:
    """``100.0 on the face swap (Deepfakes) and 96.9 on the expression warp (Face2Face)``."""
    parts = [f"**{_pct(groups[g]['video']['auc'])}** on {METHOD_TEXT.get(g, 'the fakes of')} ({g})"
             for g in sorted(groups) if g != "all"]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def _costs(results: Mapping[str, Any]) -> str:
    """Stage wall times and the machine and kernels that gave them, as recorded."""
    t, hw = results.get("timings", {}), results.get("hardware", {})
    stages = ", ".join(f"{name} {round(t[key])} s" for key, name in
                       (("preprocess_s", "preprocessing"), ("train_s", "training"), ("eval_s", "evaluation")) if key in t)
    kernels = f" ({hw['threads']} torch threads, {hw['cpu_kernels']} kernels)" if "threads" in hw and "cpu_kernels" in hw else ""
    return f"{stages} of wall-clock time on {hw.get('cpu') or 'an unrecorded CPU'}{kernels}"


def render_block(results: Mapping[str, Any], source: str) -> str:
    """The README block for demo results ``results`` read from ``source`` (a path relative to the README)."""
    block = results["datasets"]
    name = next(iter(block))
    data = block[name]
    groups = data["groups"]
    frames = data.get("frames_per_video")
    steps = results.get("training", {}).get("steps")
    lines = [
        f"{BEGIN}: written by `make demo-artifacts` from {source}; do not edit by hand -->",
        f"The shipped demo run (`{results['run_id']}`, {steps} training steps) ends at video AUC "
        f"{_detection(groups)}, and pixel IoU **{_pct(groups['all']['pixel']['iou'])} %** on the fakes "
        f"({data['counts']['videos_scored']} test videos, {frames} frames each). Its stages took {_costs(results)}.",
        END,
    ]
    return "\n".join(lines)


def find_block(text: str) -> str:
    """The one demo-numbers block of a README's ``text``."""
    blocks = _BLOCK.findall(text)
    if len(blocks) != 1:
        raise DemoNumbersError(f"the README holds {len(blocks)} demo-numbers blocks, not 1 "
                               f"(between '{BEGIN}' and '{END}'); run `make demo-artifacts`")
    return blocks[0]


def replace_block(text: str, block: str) -> str:
    """``text`` with its demo-numbers block replaced by ``block``."""
    find_block(text)
    return _BLOCK.sub(lambda _: block, text)


def docs_figures(results: Mapping[str, Any], repo: Path) -> dict[Path, Path]:
    """The figures under ``docs/`` that show the shipped demo run -> the shipped copy each is taken
    from (the run's own figure, as publishing copied it beside the leaderboard)."""
    name = next(iter(results["datasets"]))
    figures = results.get("figures", {})
    shipped = Path(repo) / "leaderboards" / str(figures.get("run_dir", "")) / f"figures/roc_{name}.png"
    return {Path(repo) / "docs" / "demo_roc.png": shipped}


def check_readme(readme: Path) -> Path:
    """Raise DemoNumbersError unless the README's block is exactly what the results file it names
    renders, and that file is the one demo run shipped beside it. Returns that file."""
    block = find_block(Path(readme).read_text(encoding="utf-8"))
    source = _SOURCE.search(block)
    if source is None:
        raise DemoNumbersError("the README's demo-numbers block names no results file; run `make demo-artifacts`")
    path = Path(readme).parent / source.group(1)
    shipped = shipped_demo_files(path.parent)
    if path not in shipped or len(shipped) != 1:
        raise DemoNumbersError(f"the README quotes {source.group(1)}, but the shipped demo results are "
                               f"{[p.name for p in shipped]}; run `make demo-artifacts`")
    expected = render_block(json.loads(path.read_text(encoding="utf-8")), source.group(1))
    quoted, held = _NUMBER.findall(block), _NUMBER.findall(expected)
    if block != expected:
        wrong = [f"{q} (results: {h})" for q, h in zip(quoted, held) if q != h]
        raise DemoNumbersError(f"the README's demo numbers differ from {source.group(1)}: "
                               f"{', '.join(wrong) or 'the text around them'}; run `make demo-artifacts`")
    return path
