"""The run folder: the one place that names the files and folders of ``runs/<run_id>/``.

    config.json       the resolved RunConfig
    train_log.jsonl   one line per optimizer step (and per validation)
    checkpoint/       the safetensors bundle (harness/training/checkpoint.py)
    scores/           per-video test scores, one CSV per dataset
    examples/         localization examples, one NPZ per dataset
    blocks/           each finished test dataset's results block (evaluation resumes from them)
    figures/          ROC/PR curves, score histograms, training curves, examples
    results.json      the same JSON that goes to runs/results/
    evaluation.json   what `harness evaluate` scored (checkpoint, config, crop)
    report.md         one page: setup, numbers, figures (`harness report RUN` redraws)
    run.lock          the live process that owns the folder
    tensorboard/      the TensorBoard logger's event files (when --logger tensorboard)

Every other module asks this one for a path (a test refuses a file name spelled elsewhere). Names
are also class attributes, for the relative links results.json records (``figures/roc_ffpp.png``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.common.files import safe_name


def file_stem(name: str) -> str:
    """A dataset or group name as a file name in the run folder (plugin names are free text)."""
    return safe_name(name, ascii_only=True, squeeze=True) or "dataset"


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (nothing is created until a writer creates it)."""

    path: Path

    CONFIG = "config.json"
    RESULTS = "results.json"
    LOG = "train_log.jsonl"
    CHECKPOINT = "checkpoint"
    SCORES = "scores"
    EXAMPLES = "examples"
    BLOCKS = "blocks"
    FIGURES = "figures"
    REPORT = "report.md"
    EVALUATION = "evaluation.json"
    LOCK = "run.lock"
    TENSORBOARD = "tensorboard"  # not a plugin: the folder the TensorBoard logger writes to

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def results(self) -> Path:
        return self.path / self.RESULTS

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def scores(self) -> Path:
        return self.path / self.SCORES

    @property
    def examples(self) -> Path:
        return self.path / self.EXAMPLES

    @property
    def blocks(self) -> Path:
        return self.path / self.BLOCKS

    @property
    def figures(self) -> Path:
        return self.path / self.FIGURES

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    @property
    def evaluation(self) -> Path:
        return self.path / self.EVALUATION

    @property
    def lock(self) -> Path:
        return self.path / self.LOCK

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    def scores_file(self, dataset: str) -> Path:
        return self.scores / f"{file_stem(dataset)}.csv"

    def examples_file(self, dataset: str) -> Path:
        return self.examples / f"{file_stem(dataset)}.npz"

    def block_file(self, dataset: str) -> Path:
        return self.blocks / f"{file_stem(dataset)}.json"

    def is_run_folder(self) -> bool:
        """Anything a run writes first is here (results, its log or its config)."""
        return any(p.exists() for p in (self.results, self.log, self.config))

    @classmethod
    def results_of(cls, source: str | Path) -> Path:
        """A results file given as itself or as the run folder that holds it."""
        source = Path(source)
        return cls(source).results if source.is_dir() else source
