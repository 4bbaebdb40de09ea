"""`harness preprocess DATASET`: fill the face cache (resumable, parallel, shardable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from harness.extend.defaults import defaults
from harness.extend.hookspecs import hookimpl


def _print_summary(summary, console=None) -> None:
    """The summary table and its notes on stdout (or ``console``), each count, cause and path whole."""
    from harness.common.ui import Column, Listing, print_table

    table = Listing([Column("what"), Column("count", right=True)], title=f"Preprocessing summary ({summary.cache_root})")
    for label, value in (("videos in this run", summary.videos), ("already done (skipped)", summary.skipped),
                         ("done", summary.done), ("no face", summary.no_face), ("failed", summary.failed),
                         ("sampled frames", summary.frames), ("frames with a face", summary.frames_with_face),
                         ("faces", summary.faces)):
        table.add_row(label, str(value))
    for cause, n in sorted(summary.failures_by_cause.items()):
        table.add_row(f"cause: {cause}", str(n))
    table.notes += [f"{f['uid']}: {f['cause']}: {f['message']}" for f in summary.failures[:5]] + list(summary.notes)
    if summary.redone:
        table.notes.append(f"redone {len(summary.redone)} video(s) whose crops were damaged or missing, or whose "
                           f"file changed since it failed: {', '.join(summary.redone[:5])}")
    table.notes.append(f"crop rule: {summary.crop_rule}; crop format: {summary.crop_format or '-'}; {summary.seconds:.1f} s")
    print_table(table, console)


def _verify(root: Path, as_json: bool = False) -> None:
    """--verify: read every crop and check its size and checksum; exit 1 when something is damaged.
    ``as_json``: the report as one JSON document on stdout."""
    from harness.common.ui import say
    from harness.data.cache import FaceCache
    from harness.data.cache_tools import verify

    with FaceCache(root, create=False) as cache:
        fmt = cache.crop_format
        report = verify(cache)
    ok = not report.damaged and not report.notes
    if as_json:
        import json
        from dataclasses import asdict

        print(json.dumps({"cache": str(root), "crop_format": fmt or None, "ok": ok, **asdict(report)}, indent=2))
    else:
        _verify_lines(root, fmt, report, ok, say)
    if not ok:
        raise typer.Exit(1)


def _verify_lines(root: Path, fmt: str | None, report: Any, ok: bool, say: Any) -> None:
    """--verify's report on stdout, one line each (a damaged video's uid and a path stay whole)."""
    for note in report.notes:
        say(note, "yellow")
    if report.set_aside:  # not an error: their videos are missing from the index, so preprocessing redoes them
        say(f"set aside earlier as damaged (kept, not read): {', '.join(report.set_aside)} in {root / 'index'}; their "
            "videos are preprocessed again by the next `harness preprocess` or run, then they can be deleted")
    for uid, problems in list(report.damaged.items())[:20]:
        say(f"damaged: {uid}: {'; '.join(problems[:3])}")
    state = "ok" if ok else f"{len(report.damaged)} damaged video(s)"
    say(f"verified {root} ({fmt or 'empty'}): {report.videos} done videos, {report.crops} crops: {state}")
    if not ok:
        say("repair: rerun the same `harness preprocess DATASET ...` with --repair (or the same `harness run`)")


def _cache_only(cache: Path | None, cache_dir: Path | None, detector: str, crop_size: int, margin: float) -> Path:
    """The cache folder --verify/--compact work on, without a dataset; exit 2 when there is none."""
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.data.crop import CropRule

    root = cache if cache is not None else faces_cache_root(CropRule.for_detector(detector, crop_size=crop_size,
                                                                                  margin=margin), cache_dir)
    if not FaceCache.exists(Path(root)):
        typer.secho(f"error: no face cache at {root}; give --face-cache DIR (the folder you preprocessed into)", fg="red", err=True)
        raise typer.Exit(2)
    return Path(root)


def parse_frames(text: str, crop_size: int | None = None) -> int | dict[str, int]:
    """``"32"`` or ``"train=8,test=32"``; every count at least 1 (checked before any work: a 0 would
    mark every video 'no face' in the cache, for good) and one video's crops at ``crop_size``
    within this machine's memory. A ValueError says what to pass."""
    from harness.vocab.config_check import check_frames

    try:
        if "=" not in text:
            frames: int | dict[str, int] = int(text)
        else:
            frames = {}
            for part in text.split(","):
                key, _, value = part.partition("=")
                frames[key.strip()] = int(value)
    except ValueError:
        raise ValueError(f"--frames {text!r}: give a number of frames per video (32) or one per split "
                         "(train=8,test=32)") from None
    check_frames(frames, crop_size=crop_size)  # ConfigError is a ValueError: the command's one line, exit 2
    return frames


def _dataset_choice(dataset: str | None, split: list[str] | None, root: Path | None, train_dir: Path | None,
                    test_csv: Path | None, val_fraction: float | None, allow_missing: bool) -> tuple[str, list[str], dict]:
    """(dataset name, splits, plugin options) from the command line: a named dataset, or the folder
    dataset of --train-dir/--test-csv. Exits with code 2 on a contradiction."""
    from harness.run.userdata import UserDataError, folder_options

    options: dict = {"root": root}
    if allow_missing:
        options["allow_missing"] = True
    if train_dir is not None or test_csv is not None or val_fraction is not None:
        if dataset not in (None, defaults().user_dataset):
            typer.secho(f"--train-dir/--test-csv are the folder dataset's options, not {dataset}'s", fg="red", err=True)
            raise typer.Exit(2)
        try:
            options = folder_options(train_dir, test_csv, val_fraction)
        except UserDataError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from exc
        dataset = defaults().user_dataset
        if not split:
            split = ((["train"] + (["val"] if val_fraction else [])) if train_dir is not None else []) + \
                    (["test"] if test_csv is not None else [])
    if dataset is None:
        typer.secho("name a dataset (harness preprocess ffpp ...) or give --train-dir/--test-csv", fg="red", err=True)
        raise typer.Exit(2)
    return dataset, split or ["test"], options


# long only by the typer option declarations (one per line)
def preprocess_cmd(
    dataset: Optional[str] = typer.Argument(None, help="Dataset plugin name (ffpp, celebdf, dfdc, dfdcp, folder ...); "
                                            "folder when --train-dir/--test-csv is given."),
    split: Optional[list[str]] = typer.Option(None, "--split", "-s", help="Splits to preprocess (repeatable; default test, "
                                              "or every split your --train-dir/--test-csv give)."),
    train_dir: Optional[Path] = typer.Option(None, "--train-dir", help="Your own data: folder of real training videos/images."),
    test_csv: Optional[Path] = typer.Option(None, "--test-csv", help="Your own data: test CSV path,label[,source[,video]]."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="With --train-dir: share of identities carved for validation."),
    root: Optional[Path] = typer.Option(None, "--root", help="The dataset's own folder."),
    cache: Optional[Path] = typer.Option(None, "--face-cache", help="Face cache folder itself (default: the one `harness run` "
                                         "reads for this detector and crop rule, under the cache home)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache home, as for `harness run` (default: "
                                             "$HARNESS_CACHE, else ~/.cache/harness); the face cache is a folder below it."),
    compression: Optional[str] = typer.Option(None, "--compression", help="FF++: raw (= c0), c23, c40."),
    methods: Optional[str] = typer.Option(None, "--methods", help="FF++: comma-separated methods."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits", help="FF++: folder with train/val/test.json."),
    frames: str = typer.Option("32", "--frames", help="Frames per video: N or per split, e.g. train=8,test=32."),
    detector: str = typer.Option(defaults().face_detector, "--face-detector", help="Face detector plugin (none: each image is one face, already cropped)."),
    crop_size: int = typer.Option(256, "--crop-size", min=16),
    margin: float = typer.Option(0.3, "--margin", min=0.0),
    workers: int = typer.Option(0, "--workers", "-w", help="Worker processes (0 = this process)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: this machine's share (K in 0..N-1)."),
    no_fast: bool = typer.Option(False, "--no-fast", help="Full-resolution detection on every frame."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Redo videos that failed before."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Skip (and report) listed videos missing on disk."),
    verify: bool = typer.Option(False, "--verify", help="Check every cached crop against its recorded size and "
                                "checksum; no dataset needed; exit 1 when something is damaged."),
    repair: bool = typer.Option(False, "--repair", help="With a dataset: check every crop's checksum too and redo "
                                "the damaged videos (set aside a damaged index part)."),
    compact: bool = typer.Option(False, "--compact", help="Fold the cache's index parts (one per job) into one; "
                                 "refused while a job is working; no dataset needed."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (or the --verify report) as JSON on stdout."),
) -> None:
    """Sample frames, find faces + 68 landmarks, store crops in the cache. Rerun to resume."""
    import harness
    from harness.data.cache import FaceCache, check_writable, faces_cache_root
    from harness.data.crop import CropRule
    from harness.data.preprocess import parse_shard, preprocess
    from harness.extend.types import DatasetLayoutError, DatasetNotFoundError
    from harness.vocab.config_check import check_plugin_name, check_workers

    if dataset is not None:  # the names first: a misspelt one reads and writes nothing
        check_plugin_name("dataset", dataset, "DATASET")
    check_plugin_name("face_detector", detector, "--face-detector")
    if verify or compact:
        root_ = _cache_only(cache, cache_dir, detector, crop_size, margin)
        if compact:
            from harness.data.cache_tools import compact as fold

            typer.echo(fold(root_), err=as_json)  # a fresh claim: CacheError, one line (the CLI's guard)
        if verify:
            _verify(root_, as_json)
        return
    dataset, split, options = _dataset_choice(dataset, split, root, train_dir, test_csv, val_fraction, allow_missing)
    options.update({k: v for k, v in (("compression", compression), ("methods", methods), ("splits", splits_dir)) if v})
    try:
        check_workers(workers, "workers")
        frame_counts = parse_frames(frames, crop_size)  # before any work
        shard_t = parse_shard(shard)
        rule = CropRule.for_detector(detector, crop_size=crop_size, margin=margin)
        cache = cache if cache is not None else faces_cache_root(rule, cache_dir)  # where `harness run` reads
        if repair and FaceCache.exists(Path(cache)):
            check_writable(Path(cache), "--repair sets damaged parts aside and redoes damaged videos")
        data = harness.plugin("dataset", dataset, **options)

        # every split listed (and every label file checked) before any work
        records = [r for s in split for r in data.records(s)]
        summary = preprocess(records, cache, rule=rule, frames=frame_counts, workers=workers, shard=shard_t,
                             fast=not no_fast, retry_failed=retry_failed, repair=repair)
    except (DatasetLayoutError, DatasetNotFoundError, ValueError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt as exc:  # Ctrl-C (130) or SIGTERM (143)
        from harness.cli import interrupted

        interrupted(exc, f"the videos finished so far are kept in {cache}; run the same command again to resume")
    if as_json:
        import json

        print(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        _print_summary(summary)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("preprocess")(preprocess_cmd)
