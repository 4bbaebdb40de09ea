"""The hooks a harness plugin can implement.

A plugin is a module (or package) with functions decorated by ``@hookimpl`` (from
``harness.api``, the one module a plugin imports) and named after these specs, exposed through an
entry point in the group of each kind it provides (``harness.blenders``, ``harness.backbones``,
``harness.evaluators``, ``harness.datasets``, ``harness.face_detectors``, ``harness.loggers``,
``harness.importers``, ``harness.commands``) or in the ``harness`` group (imported for every kind). The built-in plugins
in ``plugins/`` (import package ``harness_plugins``) and the core's own commands load the same way.

Each ``register_*`` hook receives a ``register`` callable::

    register(name: str, factory: Callable[..., T], description: str = "", *, replace: bool = False)

(a blender may add ``presets={name: options}``: `harness run --preset NAME`). Names are unique
per kind: registering a name that a built-in or another plugin already has is refused (a load
failure naming both) unless ``replace=True`` says it is on purpose; `harness plugins` then shows
what was replaced.

``factory(**options)`` must return a ready instance of the kind: the kind's Protocol in
``harness/extend/types.py``, checked by ``harness/extend/contracts.py`` when the plugin registers (a class) and
on its first instance.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")

Register = Callable[..., None]


@hookspec
def register_blenders(register: Register) -> None:
    """Register self-blending generators: ``factory(**opts)(face, landmarks68, rng) -> BlendResult``;
    capability ``pair(face, landmarks68, rng) -> (augmented real, BlendResult)``; option presets with
    ``register(name, factory, description, presets={"full": {...}})``."""


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
    """Register metrics: ``factory(context: EvalContext) -> Evaluator`` with ``name``, ``needs``
    (``"scores"`` or ``"masks"``) and ``__call__(ScoreSet | MaskSet, rng) -> {metric: Metric}``; the
    context holds the run's bootstrap size, decision threshold and seed."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: ``factory(root=None, **opts)`` with ``check()`` and ``records(split)``."""


@hookspec
def register_face_detectors(register: Register) -> None:
    """Register face detectors + 68-point landmarkers: ``factory(**opts).detect(rgb) -> [Face]``;
    ``register(..., landmark_model="...")`` names the landmark model its crops fit (the crop rule
    records it); ``register(..., precropped=True)``: each image is one face, already cropped (the
    crop rule takes the whole image; its faces carry no landmarks, so it cannot train)."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register training loggers: ``factory(run_dir, config, **opts)`` with ``log(record)`` and
    ``close()``; a record is ``{"step", "epoch", scalar: value, ...}`` (see harness/training/loggers.py).
    Chosen with ``harness run --logger NAME``; the JSONL log is always written.
    ``register(..., check=fn)``: ``fn()`` raises with what to install, before any work starts."""


@hookspec
def register_importers(register: Register) -> None:
    """Register checkpoint importers: ``factory(**options)`` with a class attribute ``version``,
    ``accepts(path)``, ``read(path) -> ImportedModel`` and ``build(model_options) -> nn.Module`` (see
    ``harness.extend.types.Importer``). They turn a foreign checkpoint (e.g. SBI's released weights,
    MesoNet's Keras .h5) into a harness bundle that `harness evaluate` and `harness predict` use
    (`harness import NAME FILE --out DIR`, or ``--checkpoint NAME:FILE?option=value``). An importer
    reads its own format; a torch file only through ``read_checkpoint`` (weights only): an
    importer never unpickles code."""


@hookspec
def register_commands(app: Any) -> None:
    """Add subcommands to the ``harness`` CLI: ``app`` is the root ``typer.Typer``."""
