"""Regenerate every shipped demo number from the current code (`make demo-artifacts`).

1. `harness run --data demo` (what `make demo` runs) in a fresh cache and runs folder, in a
   temporary folder: nothing a previous run left can leak in;
2. the shipped demo row replaced: every demo results file in leaderboards/results/ (and its figures)
   removed, then `harness leaderboard --publish` of the new run, which re-renders LEADERBOARD.md;
3. the docs figures that show the demo (docs/demo_roc.png) copied from the published run;
4. the README's demo-numbers block rewritten from the published results file.

tests/test_demo_numbers.py then fails whenever the README, the docs figure and the shipped row
disagree. Prints the run's wall-clock and CPU time.

    python benchmarks/demo_artifacts.py                  # all of the above (a few CPU minutes)
    python benchmarks/demo_artifacts.py --run runs/<id>  # publish a finished demo run instead of running one
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.reporting.demo_numbers import docs_figures, render_block, replace_block, shipped_demo_files

REPO = Path(__file__).resolve().parents[1]


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    """The real command line; its output goes to this terminal, a failure stops the script."""
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env)
    if proc.returncode:
        sys.exit(f"`harness {' '.join(args)}` failed (exit code {proc.returncode}); nothing more was changed")


def run_demo(work: Path) -> Path:
    """`harness run --data demo` in a fresh cache under ``work``; returns its run folder."""
    env = dict(os.environ, HARNESS_CACHE=str(work / "cache"))
    for name in ("HARNESS_PLUGINS", "HARNESS_FAULT", "HARNESS_DATA"):
        env.pop(name, None)
    wall, cpu = time.perf_counter(), _children_cpu()
    harness("run", "--data", "demo", "--runs-dir", str(work / "runs"), cwd=work, env=env)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    print(f"demo run: {wall:.0f} s wall-clock, {cpu:.0f} s CPU (user + sys)")
    (found,) = [p.parent for p in (work / "runs").glob("*/results.json")]
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def unpublish_demo_rows(repo: Path) -> None:
    """Remove every shipped demo results file and the figures published with it."""
    board = repo / "leaderboards"
    for path in shipped_demo_files(board / "results"):
        run_dir = json.loads(path.read_text(encoding="utf-8")).get("figures", {}).get("run_dir")
        if run_dir and (board / run_dir).resolve().is_relative_to((board / "figures").resolve()):
            shutil.rmtree(board / run_dir, ignore_errors=True)
        path.unlink()
        print(f"removed {path.relative_to(repo)}")


def publish(run_dir: Path, repo: Path) -> Path:
    """`harness leaderboard --publish` of ``run_dir`` into the repository's leaderboards/."""
    board = repo / "leaderboards"
    unpublish_demo_rows(repo)
    harness("leaderboard", "--results", str(board / "results"), "--out", str(board / "LEADERBOARD.md"),
            "--publish", str(run_dir.resolve()), cwd=repo)
    (published,) = shipped_demo_files(board / "results")
    return published


def write_docs(published: Path, repo: Path) -> None:
    """The docs figures and the README block, from the published results file."""
    results = json.loads(published.read_text(encoding="utf-8"))
    for target, source in docs_figures(results, repo).items():
        shutil.copyfile(source, target)
        print(f"wrote {target.relative_to(repo)} (from {source.relative_to(repo)})")
    readme = repo / "README.md"
    block = render_block(results, published.relative_to(repo).as_posix())
    readme.write_text(replace_block(readme.read_text(encoding="utf-8"), block), encoding="utf-8")
    print(f"wrote the demo-numbers block of {readme.relative_to(repo)}:\n{block}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished demo run folder to publish (default: run the demo now)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose leaderboards/, docs/ and README change")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="demo-artifacts-") as tmp:
        run_dir = args.run or run_demo(Path(tmp))
        if not json.loads((run_dir / "results.json").read_text(encoding="utf-8")).get("demo"):
            sys.exit(f"{run_dir} is not a demo run; nothing was changed")
        write_docs(publish(run_dir, args.repo.resolve()), args.repo.resolve())
    print(f"demo artifacts regenerated in {time.perf_counter() - start:.0f} s wall-clock")


if __name__ == "__main__":
    main()
