"""Several checkpoints in one `harness evaluate`: each is scored by ``evaluate_checkpoint`` (its own
run folder, exactly as when evaluated alone), then one table compares them: each model's AUC with
its CI per test set and group, and the ΔAUC of every later model against the first with the paired
bootstrap CI and DeLong p that `harness compare` gives (``compare_runs`` on the run folders).

Faces are cut once per distinct crop rule: the face cache is keyed by the rule and fills only what
is missing, so a second model with the first one's rule finds its faces cut. A model that fails
(one line) leaves the others' folders and their table; the command then exits 2 naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.common.errors import HarnessError
from harness.common.ui import console
from harness.data.crop import CropRule
from harness.models.bundle import Bundle
from harness.run.evaluate import evaluate_checkpoint
from harness.vocab.config import RunConfig
from harness.run.paths import RunError, RunPaths

#: the paired comparison's settings: `harness compare`'s defaults, so that it prints the same numbers
COMPARE_BOOTSTRAP = 1000
COMPARE_SEED = 0


@dataclass
class Planned:
    """One ``--checkpoint``: the bundle it names, the configuration and crop rule it is scored with."""

    text: str  # as given on the command line
    checkpoint: Bundle
    config: RunConfig
    rule: CropRule


@dataclass
class Outcome:
    """What became of one ``--checkpoint``: its results and run folder, or the line saying why not."""

    text: str
    results: dict[str, Any] | None = None
    folder: Path | None = None
    error: str | None = None


def scored_data(config: RunConfig) -> dict[str, Any]:
    """What decides which test videos an evaluation scores: one value for every model of a paired
    comparison."""
    return {"test_datasets": list(config.test_datasets), "demo": config.demo,
            "demo_scale": config.demo_scale if config.demo else None, "data_root": config.data_root,
            "compression": config.compression,
            "dataset_options": {n: config.dataset_options.get(n, {}) for n in config.test_datasets}}


def check_same_test_data(plans: Sequence[Planned]) -> None:
    """Refuse models that would be scored on different videos (each brings its own recorded test
    sets and demo when none is chosen): a paired comparison needs one test set."""
    first = scored_data(plans[0].config)
    for plan in plans[1:]:
        if scored_data(plan.config) != first:
            sets = "; ".join(f"{p.text}: {'demo ' if p.config.demo else ''}{', '.join(p.config.test_datasets)}"
                             for p in (plans[0], plan))
            raise RunError(f"the checkpoints would be scored on different test data ({sets}); choose one for all "
                           "with --test, --test-csv or --data demo (and --demo-scale)")


def evaluate_several(plans: Sequence[Planned], paths: RunPaths, resume: bool = True,
                     perturb: Sequence[Any] = ()) -> list[Outcome]:
    """Score each planned model in order; a user error of one (``HarnessError``) is its one line and
    the next model is scored. Anything else is a bug: it keeps its traceback, after one line
    saying which checkpoint it came from (the finished models' folders are already written)."""
    outcomes = []
    for i, plan in enumerate(plans, 1):
        console.rule(f"[bold]checkpoint {i}/{len(plans)}: {escape(plan.text)}")
        try:
            results = evaluate_checkpoint(plan.checkpoint, plan.config, plan.rule, paths, resume=resume, perturb=perturb)
        except HarnessError as exc:
            outcomes.append(failed(plan.text, exc.line))
            continue
        except Exception:
            console.print(f"[red]failed:[/red] {escape(plan.text)} (a bug: its traceback follows)", soft_wrap=True)
            raise
        outcomes.append(Outcome(plan.text, results, paths.runs_dir / str(results["run_id"])))
    return outcomes


def failed(text: str, line: str) -> Outcome:
    """The outcome of a checkpoint that could not be scored, said in one line now."""
    console.print(f"[bold red]failed:[/bold red] {escape(text)}: {escape(line)}", soft_wrap=True)
    return Outcome(text, error=line)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def comparison(outcomes: Sequence[Outcome]) -> dict[str, Any] | None:
    """`harness compare`'s report (``compare_runs``) of the scored models, the first the baseline, on
    the videos both scored (models with other crop rules may find faces in other videos); None
    with fewer than two."""
    from harness.evaluation.compare import compare_runs, load_run

    done = [o for o in outcomes if o.folder is not None]
    if len(done) < 2:
        return None
    runs = [load_run(o.folder, o.folder.parent) for o in done]
    return compare_runs(runs, intersect=True, n_boot=COMPARE_BOOTSTRAP, seed=COMPARE_SEED)
