"""`harness datasets`: the datasets doctor.

For every registered dataset plugin: found or not, where it looked, counts per split/label/method
next to the protocol's, what is missing or wrong, and how to obtain it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from harness.data.roots import data_root
from harness.extend.contracts import capable
from harness.extend.defaults import defaults
from harness.extend.hookspecs import hookimpl
from harness.extend.types import DatasetReport


def collect_reports(root: Path | None = None, names: list[str] | None = None,
                    options: dict[str, dict] | None = None) -> list[DatasetReport]:
    """One ``DatasetReport`` per registered dataset (or per name in ``names``); never raises for a
    broken plugin: its error becomes the report's problem. ``options``: per dataset name, the
    options its factory gets (the folder dataset's train_dir/test_csv)."""
    from harness.extend import registry
    from harness.vocab.config_check import DEMO

    reports = [demo_report()] if (not names and not options) or DEMO in (names or []) else []
    entries = registry.entries("dataset")
    if names:
        entries = [registry.get("dataset", n) for n in names if n != DEMO]
    with data_root(root):
        for entry in entries:
            dataset = None
            try:
                extra = dict((options or {}).get(entry.name, {}))
                if entry.name == defaults().user_dataset:
                    extra["probe_files"] = True  # the doctor opens every file of your own data
                dataset = entry.factory(**extra)
                reports.append(dataset.check())
            except Exception as exc:  # a plugin bug must not hide the other datasets
                # where it looked, when it got that far (e.g. the test CSV it could not read)
                looked = list(dataset.looked_in) if dataset is not None and capable(dataset, "dataset", "looked_in") else []
                reports.append(DatasetReport(name=entry.name, found=False, root=None, looked_in=looked,
                                             problems=[f"{type(exc).__name__}: {exc}"]))
    return reports


def demo_report() -> DatasetReport:
    """The embedded demo: always there (built under the cache home by its first run), nothing to download."""
    from harness.data.demo import demo_root
    from harness.vocab.config_check import DEMO

    return DatasetReport(name=DEMO, found=True, root=demo_root())


def _counts_parts(report: DatasetReport) -> list[str]:
    keys = list(dict.fromkeys([*report.expected, *sorted(report.counts)]))
    lines = []
    for key in keys:
        got = report.counts.get(key, 0)
        want = report.expected.get(key)
        if want is None:
            lines.append(f"{key}: {got}")
        else:
            mark = "ok" if got == want else f"{got - want:+d}"
            lines.append(f"{key}: {got} / {want} ({mark})")
    return lines or ["-"]


def _where(report: DatasetReport) -> list[str]:
    """The dataset's root, and every file it was pointed at besides (your own data's test CSV)."""
    files = [str(p) for p in report.looked_in if Path(p).is_file()]
    return list(dict.fromkeys([str(report.root), *files]))


def doctor_table(reports: list[DatasetReport]) -> Any:
    """The doctor's table: where, counts and advice of every dataset, each path and count whole."""
    from harness.common.ui import Column, Listing, cell

    table = Listing([Column("dataset"), Column("found"), Column("where"), Column("counts (found / protocol)"),
                     Column("problems / how to get it", prose=True)], title="Datasets")
    for r in reports:
        looked = [str(p) for p in r.looked_in]
        where = cell(*(_where(r) if r.found else [f"looked in {looked[0]}", *looked[1:]] if looked else ["-"]), sep="; ")
        problems = [p for p in r.problems if p != "not found"]
        advice = [f"- {p}" for p in problems]
        if not r.found or any(not p.startswith("count ") for p in problems):  # said once, not again in a problem
            advice += [r.how_to_get] if r.how_to_get and not any(r.how_to_get in p for p in problems) else []
        status = cell("yes", style="green") if r.found and not problems else (
            cell("yes, with problems", style="yellow") if r.found else cell("no", style="red"))
        table.add_row(r.name, status, where, cell(*(_counts_parts(r) if r.found else ["-"]), sep="; "),
                      cell(*(advice or ["ok"]), sep=" "))
    return table


def render(reports: list[DatasetReport], console=None) -> None:
    """Print the doctor's table (stdout, or ``console``)."""
    from harness.common.ui import print_table

    print_table(doctor_table(reports), console)


def cache_completeness(cache_root: Path, root: Path | None = None, names: list[str] | None = None,
                       options: dict[str, dict] | None = None) -> dict[tuple[str, str], dict[str, int]]:
    """Per (dataset, split) of every dataset found: how many of its videos the face cache at
    ``cache_root`` has done, with no face, failed, claimed by a live job, or missing."""
    from harness.extend import registry
    from harness.data.cache import FaceCache
    from harness.data.cache_tools import completeness

    records = []
    entries = [registry.get("dataset", n) for n in names] if names else registry.entries("dataset")
    with data_root(root):
        for entry in entries:
            try:
                dataset = entry.factory(**dict((options or {}).get(entry.name, {})))
            except Exception:  # noqa: BLE001 - the doctor's table already says why
                continue
            for split in ("train", "val", "test"):
                try:
                    records += list(dataset.records(split))
                except Exception:  # noqa: BLE001 - a split this dataset lacks, or not found
                    continue
    with FaceCache(cache_root, create=False) as cache:
        return completeness(cache, records)


def render_completeness(cache_root: Path, counts: dict[tuple[str, str], dict[str, int]], fmt: str | None,
                        console=None) -> None:
    from harness.common.ui import Column, Listing, print_table
    from harness.data.cache_tools import COMPLETENESS

    table = Listing([Column(c, right=c not in ("dataset", "split")) for c in ("dataset", "split", "videos", *COMPLETENESS)],
                    title=f"Face cache {cache_root} ({fmt or 'empty'})", key_columns=2)
    for (name, split), row in sorted(counts.items()):
        table.add_row(name, split, str(sum(row.values())), *(str(row[c]) for c in COMPLETENESS))
    if any(row["missing"] or row["failed"] for row in counts.values()):
        table.notes.append("missing: rerun the `harness preprocess` job (array) that covers it; failed: --retry-failed "
                           "once the file is fixed; claimed: a job is still working on it")
    print_table(table, console)


def _doctor_cache(cache: Path | None, cache_dir: Path | None, root: Path | None, names: list[str] | None,
                  options: dict[str, dict] | None) -> None:
    """The completeness table for ``cache`` (default: `harness run`'s face cache, when it exists)."""
    from harness.data.cache import FaceCache, faces_cache_root
    from harness.data.crop import CropRule

    cache_root = cache if cache is not None else faces_cache_root(CropRule.for_detector(defaults().face_detector), cache_dir)
    if not FaceCache.exists(Path(cache_root)):
        if cache is not None:
            typer.secho(f"error: no face cache at {cache}; give the folder you preprocessed into", fg="red", err=True)
            raise typer.Exit(2)
        return
    counts = cache_completeness(Path(cache_root), root, names, options)
    with FaceCache(cache_root, create=False) as opened:
        fmt = opened.crop_format
    render_completeness(Path(cache_root), counts, fmt)


def datasets_command(root: Path | None = None, names: list[str] | None = None, console=None,
                     options: dict[str, dict] | None = None) -> list[DatasetReport]:
    """Check every dataset and print the table; returns the reports."""
    reports = collect_reports(root, names, options)
    render(reports, console)
    return reports


def datasets(
    root: Optional[Path] = typer.Option(None, "--root", help="Data root holding one folder per dataset "
                                        "(default: $HARNESS_DATA, then ./datasets)."),
    name: Optional[list[str]] = typer.Option(None, "--name", "-n", help="Only these datasets (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON on stdout (no table)."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the reports as JSON to this file (a new file unless --force)."),
    train_dir: Optional[Path] = typer.Option(None, "--train-dir", help="Your own data: the folder of real training videos/images (checks the folder dataset)."),
    test_csv: Optional[Path] = typer.Option(None, "--test-csv", help="Your own data: the test CSV path,label[,source[,video]] (checks the folder dataset)."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="With --train-dir: show the validation split this share carves."),
    cache: Optional[Path] = typer.Option(None, "--face-cache", help="Face cache whose completeness to show per dataset and "
                                         "split (default: the one `harness run` uses under --cache-dir, when it exists)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Cache home, as for `harness run` (default: "
                                             "$HARNESS_CACHE, else ~/.cache/harness)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --json-out file."),
) -> None:
    """Doctor: which datasets are found, their counts against the protocol, what is missing and how to get it.

    With --train-dir/--test-csv: your own data, counted per split, label and source, with every
    missing or unreadable file, duplicate and bad CSV line."""
    from harness.run.userdata import UserDataError, folder_options

    from harness.common.files import check_output, write_output_file

    from harness.vocab.config_check import DEMO, check_plugin_name

    for one in name or []:
        check_plugin_name("dataset", one, "--name", (DEMO,))  # before anything is read: a suggestion, exit 2
    options, exit_code = None, 0
    if root is not None and not root.is_dir():
        typer.secho(f"error: --root {root}: no such folder; give the folder that holds one folder per dataset "
                    "(or leave --root out: $HARNESS_DATA, then ./datasets)", fg="red", err=True)
        raise typer.Exit(2)
    inputs = [test_csv] if test_csv is not None else []  # the one input file it could be
    if json_out is not None:  # before any dataset is read
        check_output(json_out, "--json-out", folder=False, force=force, inputs=inputs, replaceable=is_doctor_report)
    if train_dir is not None or test_csv is not None or val_fraction is not None:
        try:
            options = {defaults().user_dataset: folder_options(train_dir, test_csv, val_fraction)}
        except UserDataError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        name = name or [defaults().user_dataset]
    if as_json:
        reports = collect_reports(root, name or None, options)
        print(_reports_json(reports))
    else:
        reports = datasets_command(root, name or None, options=options)
    found = [r.name for r in reports if r.found and r.name != DEMO]  # the demo has no face cache of its own to check here
    if found and not as_json:
        _doctor_cache(cache, cache_dir, root, found, options)
    if options and any(not r.found or r.problems for r in reports if r.name == defaults().user_dataset):
        exit_code = 1  # your own data has problems: scripts can stop here
    if json_out is not None:
        text = _reports_json(reports)
        write_output_file(json_out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), "--json-out", force=force,
                          inputs=inputs, replaceable=is_doctor_report)
    if options and exit_code:
        raise typer.Exit(exit_code)


def _reports_json(reports: list[DatasetReport]) -> str:
    import json
    from dataclasses import asdict

    return json.dumps([asdict(r) for r in reports], indent=2, default=str)


def is_doctor_report(path: Path) -> bool:
    """``path`` holds what `datasets --json-out` writes (a list of dataset reports), so writing it again
    loses nothing; any other file is the user's and needs --force."""
    from dataclasses import fields

    from harness.common.bounded import read_json

    try:
        data = read_json(path, "--json-out")
    except Exception:  # noqa: BLE001 - unreadable or not JSON: not ours
        return False
    keys = {f.name for f in fields(DatasetReport)}
    return isinstance(data, list) and all(isinstance(r, dict) and set(r) == keys for r in data)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("datasets")(datasets)
