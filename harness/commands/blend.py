"""`harness blend ...`: look at what the self-blenders produce."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from harness.cli import HarnessGroup, fail
from harness.common.errors import HarnessError
from harness.extend.hookspecs import hookimpl

blend_app = typer.Typer(cls=HarnessGroup, help="Inspect self-blending generators (preview grids of fakes and their masks).", no_args_is_help=True)


@blend_app.callback()
def _main() -> None:
    """Inspect self-blending generators."""


@blend_app.command()
def preview(
    image: Optional[Path] = typer.Argument(
        None, help="A face photo (PNG/JPEG); the largest face is found with --face-detector and cropped. "
        "Default: the public-domain astronaut face from scikit-image."
    ),
    out: Path = typer.Option(Path("blend_preview.png"), "--out", "-o", help="Where to write the PNG grid (a new file unless --force)."),
    blender: Optional[str] = typer.Option(
        None, "--blender", "-b", help="Comma-separated blender names. Default: every registered blender."
    ),
    n: int = typer.Option(4, "--n", min=1, max=16, help="Fakes per blender."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the grid is reproducible)."),
    size: int = typer.Option(256, "--size", min=64, max=1024, help="Face crop size in pixels."),
    detector: Optional[str] = typer.Option(
        None, "--face-detector", help="Face detector plugin for IMAGE. Default: the one a run uses (see `harness run --face-detector`)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file (never IMAGE)."),
) -> None:
    """Write a PNG grid like the paper's Fig. 7: the source face, fakes of each blender, masks under them."""
    from harness.common.files import OutputError, check_output, write_output_file
    from harness.reporting.preview import render_preview

    from harness.vocab.config_check import check_names, check_seed

    check_names(blenders=_blender_names(blender) if blender is not None else (), face_detector=detector)  # names first
    check_seed(seed)  # the generators take 0 ... 2**32 - 1
    inputs = [image] if image is not None else []
    try:
        check_output(out, "--out", folder=False, force=force, inputs=inputs)  # before any face is read
    except OutputError as exc:
        fail(str(exc))
    names = _blender_names(blender)
    blenders = _build_blenders(names)
    face, landmarks = _face(image, size, detector)
    grid = render_preview(face, landmarks, blenders, n=n, seed=seed)  # a failing blender: BlenderFailed, one line
    data = _encoded(grid, out)
    try:
        write_output_file(out, lambda tmp: Path(tmp).write_bytes(data), "--out", force=force, inputs=inputs)
    except OutputError as exc:  # a full disk: one line, the file left as it was
        fail(str(exc))
    typer.echo(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]}): {', '.join(names)}, {n} fakes each, seed {seed}")


def _encoded(grid, out: Path) -> bytes:
    """``grid`` (RGB) encoded in the format ``out``'s extension names (.png, as cv2.imwrite would)."""
    import cv2

    try:
        ok, data = cv2.imencode(out.suffix, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        fail(f"--out: could not write {out}; use a .png path in a writable folder")
    return data.tobytes()


def _blender_names(blender: Optional[str]) -> list[str]:
    """The names of ``--blender``, or every registered blender when it is not given."""
    if blender is None:
        from harness.extend import registry

        names = [entry.name for entry in registry.entries("blender")]
        if not names:
            fail("--blender: no blender plugin is loaded; see `harness plugins`")
        return names
    names = [b.strip() for b in blender.split(",") if b.strip()]
    if not names:
        fail("--blender: name at least one blender, e.g. --blender NAME1,NAME2 (see `harness plugins`)")
    return names


def _build_blenders(names: list[str]) -> dict:
    """The named blenders from the registry, each wrapped so its errors name it."""
    from harness.reporting.preview import blenders_by_name
    from harness.extend.registry import PluginError

    try:
        return {name: _named(name, blender) for name, blender in blenders_by_name(names).items()}
    except PluginError as exc:  # unknown name: the registry's message suggests the close one
        fail(f"--blender: {exc}")
    except Exception as exc:
        fail(f"--blender: a blender could not be built ({type(exc).__name__}: {exc}); check its plugin with `harness plugins`")
    raise AssertionError  # fail exits


def _face(image: Optional[Path], size: int, detector: Optional[str]) -> tuple:
    """The face crop and its landmarks: the astronaut, or the largest face ``detector`` finds in IMAGE."""
    if image is None:
        from harness.data.sample_face import astronaut_face

        return astronaut_face(size)
    if not image.is_file():
        fail(f"IMAGE {image} is not a file; pass a PNG/JPEG face photo, or nothing for the astronaut face")
    from harness.reporting.preview import face_from_image
    from harness.extend.registry import PluginError

    try:
        return face_from_image(str(image), size, detector)
    except PluginError as exc:
        fail(f"--face-detector: {exc}")
    except ValueError as exc:
        fail(f"IMAGE {image}: {exc}")
    raise AssertionError  # fail exits


class BlenderFailed(HarnessError, RuntimeError):
    """A blender raised while making the preview; the message names it."""


def _named(name: str, blender):
    """``blender`` whose errors name it (a plugin bug is reported as one line, not a traceback)."""

    def call(face, landmarks, rng):
        try:
            return blender(face, landmarks, rng)
        except Exception as exc:
            raise BlenderFailed(
                f"blender {name!r} failed on the preview face ({type(exc).__name__}: {exc}); "
                "report it to the plugin's authors, or preview another with --blender"
            ) from exc

    return call


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.add_typer(blend_app, name="blend")
