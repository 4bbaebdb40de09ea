"""The probe of issue 31, items 6 (configs) and 7 (numbers): every numeric option and config value
is range-checked before any work, `--dry-run` included, by the one check (harness/vocab/config_check.py)
that `run`, `evaluate`, `predict`, `preprocess`, `compare` and `blend` share; a `--config` file is
checked field by field against RunConfig's declared types, in one line naming the file and the field;
batch sizes and frame counts are bounded by the machine's free memory, and the line says so."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from fixtures.builders import tiny_swin_run
from fixtures.cli_checks import one_line_exit_2
from harness.cli import build_app

runner = CliRunner()
HUGE = "100000000"  # 10^8 images or frames: terabytes at any crop size, on any machine


def invoke(*args: str):
    return runner.invoke(build_app(), [str(a) for a in args])


# ---------------------------------------------------------------------------------- harness run
BAD_NUMBERS = {
    "lr_nan": (["--lr", "nan"], ["--lr nan", "finite"]),
    "weight_decay_inf": (["--weight-decay", "inf"], ["--weight-decay inf", "finite"]),
    "sam_rho_nan": (["--sam-rho", "nan"], ["--sam-rho nan"]),
    "seed_negative": (["--seed", "-1"], ["--seed -1", "4294967295"]),
    "seed_too_big": (["--seed", str(2**32)], ["--seed 4294967296"]),
    "batch_size_huge": (["--batch-size", HUGE], [f"--batch-size {HUGE}", "memory", "use at most"]),
    "eval_frames_huge": (["--eval-frames", HUGE], [f"--eval-frames {HUGE}", "memory", "use at most"]),
    "workers_huge": (["--workers", "100000"], ["--workers 100000", "CPU cores"]),
}


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_a_number_that_cannot_run_is_refused_before_any_work(case, dry_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, needles = BAD_NUMBERS[case]
    result = invoke("run", "--data", "demo", "--demo-scale", "tiny", *args, *(["--dry-run"] if dry_run else []))
    one_line_exit_2(result, *needles)
    assert not (tmp_path / "runs").exists()


def _config_file(tmp_path: Path, section: str | None, key: str, value) -> Path:
    from harness.vocab.config import RunConfig

    data = RunConfig().to_dict()
    (data[section] if section else data)[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))  # NaN is written as NaN: what json.dumps of a float nan gives
    return path


BAD_FIELDS = {
    "train_null": (None, "train", None, "train = null"),
    "backbone_list": (None, "backbone", ["swin"], 'backbone = ["swin"]'),
    "lr_text": ("train", "lr", "abc", 'train.lr = "abc"'),
    "lr_nan": ("train", "lr", float("nan"), "train.lr = NaN"),
    "seed_fraction": (None, "seed", 1.5, "seed = 1.5"),
    "threshold_out_of_range": ("eval", "threshold", 3, "eval.threshold = 3"),
    "dataset_options_null": (None, "dataset_options", None, "dataset_options = null"),
    "unknown_train_field": ("train", "learning_rate", 0.1, "train.learning_rate"),
    "aggregation_word": ("eval", "video_aggregation", "sum", "eval.video_aggregation"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_a_config_file_field_of_the_wrong_type_or_range_names_the_file_and_the_field(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    section, key, value, needle = BAD_FIELDS[case]
    path = _config_file(tmp_path, section, key, value)
    one_line_exit_2(invoke("run", "--config", path, "--dry-run"), f"--config {path}", needle)


@pytest.mark.parametrize("spelling,expected", [("none", False), ("None", False), ("scratch", False), ("false", False),
                                               ("true", "imagenet"), ("ImageNet", "imagenet")])
def test_a_recorded_pretrained_takes_every_spelling_the_cli_takes(spelling, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _config_file(tmp_path, None, "pretrained", spelling)
    result = invoke("run", "--config", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["config"]["pretrained"] == expected


def _wrong_value(hint: str):
    """A value of another type than the declared one (a list is wrong for every non-list field, a
    number for a list)."""
    return 7 if hint.startswith("list") else [7]


def _fields(cls, prefix: str = ""):
    for f in fields(cls):
        kind = f.default_factory if is_dataclass(f.default_factory) else None
        if kind is not None:
            yield from _fields(kind, f"{f.name}.")
        else:
            yield f"{prefix}{f.name}", str(f.type)


def test_every_field_of_the_run_configuration_is_checked_by_its_declared_type():
    from harness.vocab.config import RunConfig
    from harness.vocab.config_check import ConfigError

    checked = 0
    for dotted, hint in _fields(RunConfig):
        data = RunConfig().to_dict()
        section, _, key = dotted.rpartition(".")
        (data[section] if section else data)[key] = _wrong_value(hint)
        with pytest.raises(ConfigError) as info:
            RunConfig.from_dict(data)
        assert str(info.value).startswith(dotted) and "\n" not in str(info.value), (dotted, str(info.value))
        checked += 1
    assert checked > 40


def test_a_field_added_to_a_section_is_checked_by_its_declaration_with_no_code_for_it():
    """What another field (a demo scale, a new loss weight) gets without touching the check."""
    from harness.vocab.config_check import ConfigError, check_types

    @dataclass
    class Section:
        scale: str = "default"
        weight: float = 1.0
        sizes: list[int] = field(default_factory=list)

    check_types({"scale": "tiny", "weight": 2, "sizes": [1, 2]}, Section)
    for data, needle in (({"scale": 3}, "scale = 3: must be text"), ({"weight": float("inf")}, "weight = Infinity"),
                         ({"sizes": ["a"]}, 'sizes = ["a"]'), ({"colour": 1}, "colour: not a field")):
        with pytest.raises(ConfigError, match=re.escape(needle)):
            check_types(data, Section)


def test_the_aggregations_the_check_knows_are_the_ones_scoring_has():
    from harness.evaluation.runner import AGGREGATORS
    from harness.vocab.config_check import AGGREGATIONS

    assert set(AGGREGATIONS) == set(AGGREGATORS)


# ---------------------------------------------------------------------------------- other commands
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_swin_run(tmp_path_factory.mktemp("bounds-run"), 64)


@pytest.fixture(scope="module")
def face_image(tmp_path_factory) -> Path:
    from harness.data.sample_face import astronaut_face

    face, _ = astronaut_face(160, margin=0.6)
    path = tmp_path_factory.mktemp("bounds-media") / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    return path


def test_evaluate_refuses_frames_the_memory_cannot_hold_in_the_dry_run(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_exit_2(invoke("evaluate", "--checkpoint", checkpoint, "--eval-frames", HUGE, "--dry-run"),
                    f"--eval-frames {HUGE}", "memory")


def test_predict_refuses_frames_the_memory_cannot_hold_before_scoring(checkpoint, face_image, tmp_path):
    out = tmp_path / "out"
    result = invoke("predict", face_image, "--checkpoint", checkpoint, "--frames", HUGE, "--out", out)
    one_line_exit_2(result, f"--frames {HUGE}", "memory", "use at most")
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [(["--frames", HUGE], f"--frames {HUGE}"), (["--workers", "100000"], "--workers 100000")])
def test_preprocess_refuses_before_touching_the_cache(args, needle, tmp_path):
    cache = tmp_path / "cache"
    one_line_exit_2(invoke("preprocess", "folder", "--root", tmp_path, "--cache", cache, *args), needle)
    assert not cache.exists()


@pytest.mark.parametrize("args,needle", [(["--seed", "-1"], "--seed -1"), (["--bootstrap", "10"], "--bootstrap 10"),
                                         (["--bootstrap", "1000000000"], "--bootstrap 1000000000")])
def test_compare_checks_its_numbers_before_reading_a_run(args, needle, tmp_path):
    one_line_exit_2(invoke("compare", tmp_path / "a", tmp_path / "b", *args), needle)


def test_blend_preview_refuses_a_negative_seed(tmp_path):
    out = tmp_path / "grid.png"
    one_line_exit_2(invoke("blend", "preview", "--seed", "-1", "--out", out), "--seed -1")
    assert not out.exists()
