"""The README and docs/ stay true: every relative link resolves, every `harness ...` command they
show names a command that exists and only options that command accepts, and the README's table of
commands lists every command there is."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(harness [^`]+)`")
CALL = re.compile(r"(?:^|[\s;&|(])harness\s+(.*)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))  # a code block's brackets are not links
    return [m.group(1) for m in LINK.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(target)
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_link_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# Here it is\n")
    page.write_text("[ok](b.md#here-it-is) [gone](missing.md) [no anchor](b.md#nowhere)\n```\n[x](in-code)\n```\n")
    assert links(page) == ["b.md#here-it-is", "missing.md", "b.md#nowhere"]
    assert not (tmp_path / "missing.md").exists() and "nowhere" not in anchors(tmp_path / "b.md")


# -- the commands they show ----------------------------------------------------------------------
def shown_commands(text: str) -> list[str]:
    """Every `harness ...` command line of the fenced shell blocks and inline code of ``text``:
    continuation lines joined, comments dropped, one entry per call."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang not in ("bash", "sh", "shell", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            found += [m.group(1).strip() for m in CALL.finditer(line.split(" #", 1)[0])]
    found += [m.group(1)[len("harness "):] for m in INLINE.finditer(FENCE.sub("", text))]
    return found


def resolve(words: list[str]):
    """The click command ``words`` name (a group's subcommand included) and the words after it."""
    import typer.main

    from harness.cli import build_app

    command = typer.main.get_command(build_app())
    path = []
    while getattr(command, "commands", None) and words and words[0] in command.commands:
        path.append(words[0])
        command, words = command.commands[words[0]], words[1:]
    return command, path, words


def accepted(command) -> set[str]:
    return {o for p in command.params for o in [*p.opts, *p.secondary_opts]} | {"--help"}


def problems(call: str) -> list[str]:
    try:
        words = shlex.split(call.replace("<", "_").replace(">", "_"))
    except ValueError:
        words = call.split()
    if words and words[0].isupper():  # a placeholder: `harness COMMAND --help`
        return []
    command, path, rest = resolve(words)
    if not path and not (words and words[0].startswith("-")):  # `harness --help` is the root's own option
        return [f"`harness {call}`: no command {words[:1]}"]
    if getattr(command, "commands", None) and not (rest and rest[0].startswith("-")):
        return [f"`harness {call}`: {' '.join(path)} needs one of {sorted(command.commands)}"]
    options = {w.split("=", 1)[0] for w in rest if w.startswith("-") and not re.match(r"-\d", w) and w not in ("-", "--")}
    unknown = sorted(options - accepted(command))
    return [f"`harness {call}`: {' '.join(path) or 'harness'} takes no {', '.join(unknown)}"] if unknown else []


def test_every_command_shown_exists_with_its_options():
    calls = {page.relative_to(ROOT).as_posix(): shown_commands(page.read_text(encoding="utf-8")) for page in PAGES}
    assert len(calls["README.md"]) >= 15  # the parser finds the tour and the table
    wrong = [f"{page}: {p}" for page, found in calls.items() for call in found for p in problems(call)]
    assert not wrong, "\n".join(wrong)


def test_the_command_check_can_fail():
    assert problems("run --data demo --face-detector dlib") == []
    assert problems("blend preview --out x.png") == []
    assert problems("run --no-such-option 3")[0].endswith("takes no --no-such-option")
    assert "no command" in problems("frobnicate --x")[0] and problems("--help") == [] and problems("--nope")
    assert "needs one of" in problems("blend")[0] and "takes no --out" in problems("blend --out x.png")[0]
    assert shown_commands("```bash\nharness run \\\n    --seed 1  # a --comment\n#SBATCH --x\n```\n`harness plugins --kind x`") == \
        ["run      --seed 1", "plugins --kind x"]


def test_readme_tables_every_command_and_each_help_runs():
    """Each command in the README's table of commands, and `--help` of each answers (in-process)."""
    import typer.main

    from harness.cli import build_app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `harness ([a-z ]+)` \|", table, re.M)
    root = typer.main.get_command(build_app())
    names = [f"{n} {sub}" if getattr(c, "commands", None) else n for n, c in root.commands.items()
             for sub in (getattr(c, "commands", None) or [""])]
    assert sorted(listed) == sorted(n.strip() for n in names)
    runner = CliRunner()
    for name in listed:
        result = runner.invoke(build_app(), [*name.split(), "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, name
