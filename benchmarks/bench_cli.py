"""CLI start-up: wall time of `harness --help`, `harness plugins` and a command's `--help`, each in
a fresh interpreter through the installed console script, and what each one imports.

    python benchmarks/bench_cli.py [--n 9]

Target: `harness --help` <= 0.5 s, median of the runs, on an idle 2-core machine. Plugins are
listed from their entry points and imported only when their kind is needed; no command imports
torch before it runs (tests/test_cli_startup.py asserts that part; timings are only reported).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
CASES = (["--help"], ["plugins", "--json"], ["run", "--help"], ["predict", "--help"])
HEAVY = ("torch", "sklearn", "timm", "numpy", "cv2")


def console_script() -> list[str]:
    """The `harness` next to this interpreter (what a user types), else ``python -m harness``."""
    found = Path(sys.executable).with_name("harness")
    if found.exists():
        return [str(found)]
    return [shutil.which("harness")] if shutil.which("harness") else [sys.executable, "-m", "harness"]


def wall(command: list[str], n: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_PLUGINS"}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def heavy_imports(args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness", *args],
                          capture_output=True, text=True, check=True)
    top = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in HEAVY if name in top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=9, help="runs per command (the median is reported)")
    args = parser.parse_args()
    script = console_script()
    wall(script + ["--help"], 2)  # warm the file cache: the first run reads every .pyc from disk
    baseline = statistics.median(wall([sys.executable, "-c", "pass"], args.n))
    print(f"python start-up alone: {baseline:.3f} s (median of {args.n})")
    print(f"{'command':28} {'median s':>9} {'min s':>7} {'max s':>7}  heavy imports")
    for case in CASES:
        times = wall(script + case, args.n)
        label = "harness " + " ".join(case)
        heavy = ", ".join(heavy_imports(case)) or "none"
        print(f"{label:28} {statistics.median(times):9.3f} {min(times):7.3f} {max(times):7.3f}  {heavy}")
        if case == ["--help"]:
            verdict = "meets" if statistics.median(times) <= TARGET_S else "misses"
            print(f"  -> {verdict} the {TARGET_S} s target for `harness --help`")


if __name__ == "__main__":
    main()
