"""The hooks a harness plugin can implement.

A plugin is a module (or package) with functions decorated by ``@harness.hookimpl`` and named
after these specs, exposed through the ``harness`` entry-point group. The built-in plugins in
``plugins/`` (import package ``harness_plugins``) are loaded exactly the same way.

Each ``register_*`` hook receives a ``register`` callable::

    register(name: str, factory: Callable[..., T], description: str = "", *, replace: bool = False)

Names are unique per kind: registering a name that a built-in or another plugin already has is
refused (a load failure naming both) unless ``replace=True`` says it is on purpose; `harness
plugins` then shows what was replaced.

``factory(**options)`` must return a ready instance of the kind (see ``harness/types.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")

Register = Callable[..., None]


@hookspec
def register_blenders(register: Register) -> None:
    """Register self-blending generators: ``factory(**opts)(face, landmarks68, rng) -> BlendResult``."""


@hookspec
def register_backbones(register: Register) -> None:
    """Register encoders: ``factory(pretrained=False, img_size=224, **opts) -> nn.Module`` whose
    forward returns four NCHW maps at strides 4/8/16/32 and which declares ``channels``.

    ``pretrained`` is False, ``"imagenet"`` or a weights file path. Optional attributes: ``weights``
    (``{"source", "file", "sha256"}`` of the file that initialised it, recorded in results; see
    ``harness.models.pretrained.weights_record``) and ``expects_pretrained`` (True when the method
    it reproduces starts from ImageNet: training it from scratch then prints a warning)."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register metrics: ``factory(**opts)(ScoreSet | MaskSet, rng) -> {metric: Metric}``."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: ``factory(root=None, **opts)`` with ``check()`` and ``records(split)``."""


@hookspec
def register_face_detectors(register: Register) -> None:
    """Register face detectors + 68-point landmarkers: ``factory(**opts).detect(rgb) -> [Face]``."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register training loggers: ``factory(run_dir, config, **opts)`` with ``log(record)`` and
    ``close()``; a record is ``{"step", "epoch", scalar: value, ...}`` (see harness/training/loggers.py).
    Chosen with ``harness run --logger NAME``; the JSONL log is always written."""


@hookspec
def register_commands(app: Any) -> None:
    """Add subcommands to the ``harness`` CLI: ``app`` is the root ``typer.Typer``."""
