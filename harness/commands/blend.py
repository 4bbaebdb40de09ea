"""`harness blend ...`: look at what the self-blenders produce."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Inspect self-blending generators (preview grids of fakes and their masks).", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Inspect self-blending generators."""


@app.command()
def preview(
    image: Optional[Path] = typer.Argument(
        None, help="A face photo (PNG/JPEG); the largest face is found with dlib and cropped. "
        "Default: the public-domain astronaut face from scikit-image."
    ),
    out: Path = typer.Option(Path("blend_preview.png"), "--out", "-o", help="Where to write the PNG grid."),
    blender: str = typer.Option("multipart,sbi", "--blender", "-b", help="Comma-separated blender names."),
    n: int = typer.Option(4, "--n", min=1, max=16, help="Fakes per blender."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the grid is reproducible)."),
    size: int = typer.Option(256, "--size", min=64, max=1024, help="Face crop size in pixels."),
) -> None:
    """Write a PNG grid like the paper's Fig. 7: the source face, fakes of each blender, masks under them."""
    import cv2

    import harness
    from harness_plugins.blenders.preview import face_from_image, render_preview

    names = [b.strip() for b in blender.split(",") if b.strip()]
    if not names:
        raise typer.BadParameter("name at least one blender, e.g. --blender multipart,sbi", param_hint="--blender")
    try:
        blenders = {name: harness.plugin("blender", name) for name in names}
    except KeyError as exc:  # unknown name: the plugin manager's message suggests the close one
        raise typer.BadParameter(str(exc), param_hint="--blender") from exc
    if image is None:
        from harness.data.sample_face import astronaut_face

        face, landmarks = astronaut_face(size)
    else:
        if not image.is_file():
            raise typer.BadParameter(f"{image} is not a file", param_hint="IMAGE")
        try:
            face, landmarks = face_from_image(str(image), size)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="IMAGE") from exc
    grid = render_preview(face, landmarks, blenders, n=n, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise typer.BadParameter(f"could not write {out}; use a .png path in a writable folder", param_hint="--out")
    typer.echo(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]}): {', '.join(names)}, {n} fakes each, seed {seed}")
