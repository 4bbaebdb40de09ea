"""The training loop: self-blended pairs -> model -> three losses -> SAM, resumable and DDP-ready.

Reproducibility contract: the order of samples in an epoch comes from ``(seed, epoch)``, each sample
from ``(seed, epoch, index)``, and the checkpoint holds model, optimizer, schedule and RNG state at a
step boundary. So a run stopped mid-epoch and resumed makes the same steps as one that never
stopped, and N torchrun processes with the same global batch follow one process's loss curve.
"""

from __future__ import annotations

import math
import time
from functools import cached_property
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from harness import __version__
from harness.common import faults, signals
from harness.vocab.config import LossConfig, RunConfig, TrainConfig
from harness.data.crop import CropRule
from harness.extend.contracts import capable
from harness.extend.defaults import defaults
from harness.models.threshold import eer_threshold, none as no_threshold
from harness.models.inputs import normalise
from harness.training import checkpoint as ckpt
from harness.common import runtime as dd
from harness.reporting.notes import FEATURE_SPREAD_FLOOR, SCORE_SPREAD_FLOOR  # below these the model sees one image
from harness.vocab.folder import RunFolder
from harness.training.samples import SelfBlendDataset, TrainingItem, collate_pairs, quiet_worker
from harness.common.ui import console, progress


@dataclass
class TrainOutcome:
    checkpoint: Path
    steps: int
    epochs: int
    seconds: float
    selection_rule: str
    selected: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_step: int = 0
    init_weights: dict[str, str] | None = None  # the file that initialised the encoder (name, sha256)
    collapse: dict[str, float] | None = None  # spreads measured at the last validation


class Preempted(signals.Terminated):
    """SIGTERM (a scheduler's pre-emption or time limit) reached training: the checkpoint is saved at
    the step boundary and the run stops, so the same command, requeued, resumes exactly there."""


#: the exit code of a pre-empted run: 128 + SIGTERM, what a scheduler expects of a terminated job
PREEMPTED_EXIT = 143


def _train_worker(worker_id: int) -> None:
    """A DataLoader worker ignores SIGTERM: a scheduler signals the whole process group, and the main
    process finishes its step and saves before the workers go (they exit with their loader)."""
    import signal

    quiet_worker(worker_id)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class EpochBatches(torch.utils.data.Sampler[list[int]]):
    """Index batches of one epoch for one rank.

    The global order is a permutation seeded by (seed, epoch), padded by wrapping to a whole number
    of global batches; rank r takes items r, r+world, ... of each global batch. ``start`` skips the
    batches a resumed run has already done.
    """

    def __init__(self, n: int, global_items: int, seed: int, epoch: int, rank: int = 0, world: int = 1, start: int = 0) -> None:
        if global_items % world:
            raise ValueError(f"the batch ({global_items} pairs) must divide evenly over {world} processes")
        self.n, self.global_items, self.seed, self.epoch = n, global_items, seed, epoch
        self.rank, self.world, self.start = rank, world, start

    def steps(self) -> int:
        return max(1, math.ceil(self.n / self.global_items))

    def __len__(self) -> int:
        return self.steps() - self.start

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        total = self.steps() * self.global_items
        order = (order * math.ceil(total / self.n))[:total]
        for step in range(self.start, self.steps()):
            chunk = order[step * self.global_items : (step + 1) * self.global_items]
            yield chunk[self.rank :: self.world]


def _lr_lambda(train: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = max(0, train.warmup)

    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0  # linear warm-up, then the schedule
        if train.lr_schedule == "constant":
            return ramp
        return ramp * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))

    return factor


def heads_without_gradient(config: TrainSpec | RunConfig) -> bool:
    """Whether some head gets no gradient in this loss setting (DDP must then look for unused
    parameters): the projection head trains only through L_m "proj", the P_m head only through
    L_t or the token/literal forms, and neither below the minimum token grid."""
    lc = config.loss
    grid = config.img_size // 32
    if grid < lc.min_grid:
        return True
    proj_used = lc.gamma > 0 and lc.sim_form == "proj"
    token_used = lc.delta > 0 or (lc.gamma > 0 and lc.sim_form in ("token", "literal"))
    return not (proj_used and token_used)


def collapse_stats(pooled: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Spread across images of the pooled feature (mean per-dimension std, relative to the feature's
    scale) and of P_C (std): both near zero means every image gives the same feature."""
    scale = float(np.sqrt(np.mean(pooled.astype(np.float64) ** 2))) + 1e-12
    return {
        "feature_spread": float(pooled.std(axis=0).mean()) / scale,
        "score_spread": float(scores.std()),
    }


def collapse_warning(spread: dict[str, float], config: TrainSpec | RunConfig) -> str | None:
    """One line naming the likely cause when the classifier's input has collapsed, else None."""
    if spread["feature_spread"] >= FEATURE_SPREAD_FLOOR or spread["score_spread"] >= SCORE_SPREAD_FLOOR:
        return None
    causes = []
    if config.loss.gamma and config.loss.sim_form == "cosine":
        causes.append("sim_form 'cosine' rewards identical tokens on the features the classifier pools (use 'proj')")
    if config.loss.gamma and config.loss.pairs == "all":
        causes.append("pairs 'all' lets reals (every target 1) pull all tokens together (use 'fakes-balanced')")
    if config.pretrained is False:
        causes.append("the encoder trains from random weights (try --pretrained imagenet)")
    cause = "; ".join(causes) or "the learning rate or loss weights (try L_C alone: gamma=0, beta=0)"
    return (
        f"feature collapse: on validation every image gives nearly the same pooled feature (relative spread "
        f"{spread['feature_spread']:.4f}) and the same score (std {spread['score_spread']:.4f}), so detection "
        f"cannot work. Likely cause: {cause}."
    )


@dataclass(frozen=True)
class TrainSpec:
    """What training needs of a run's configuration: its train and loss sections, the model, the
    blender, the crop rule (recorded in the checkpoint for predict) and the seed and device."""

    train: TrainConfig
    loss: LossConfig
    crop: CropRule
    backbone: str = defaults().backbone
    backbone_options: dict[str, Any] = field(default_factory=dict)
    pretrained: bool | str = False
    img_size: int = 224
    blender: str = defaults().blender
    blender_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    val_batch_size: int = 32
    #: the run's configuration as recorded in model.json (predict reads its eval settings) and shown by loggers
    run: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_run(cls, config: RunConfig, crop: CropRule) -> "TrainSpec":
        return cls(
            train=config.train, loss=config.loss, crop=crop, backbone=config.backbone,
            backbone_options=dict(config.backbone_options), pretrained=config.pretrained, img_size=config.img_size,
            blender=config.blender, blender_options=dict(config.blender_options), seed=config.seed,
            device=config.device, val_batch_size=config.eval.batch_size, run=config.to_dict(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The run's configuration (what logger plugins record next to the curves)."""
        return self.run


@dataclass
class _Position:
    """Where a fit is: the resumable counters, the selection so far and the loss history."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    this_call: int = 0  # steps made by this fit() call


class Trainer:
    def __init__(
        self,
        spec: TrainSpec,
        run_dir: Path,
        cache_root: Path,
        train_items: list[TrainingItem],
        val_items: list[TrainingItem],
        show_progress: bool | None = None,
        loggers: list[str] | str | None = None,
    ) -> None:
        from harness.training.loggers import make_loggers

        self.spec = spec
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = RunFolder(self.run_dir).checkpoint
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.show_progress = show_progress
        self.device = dd.pick_device(spec.device)
        dd.init_from_env(self.device)
        self.world, self.rank = dd.world_size(), dd.rank()
        # train_log.jsonl always, then e.g. TensorBoard (--logger); only the main process logs
        self.loggers = make_loggers(loggers, self.run_dir, spec) if dd.is_main() else []
        torch.manual_seed(spec.seed)
        self._build_model()
        self._build_loss()
        self._build_optimizer()
        self._build_data(str(cache_root), train_items, val_items)
        # Scheduled on the base optimizer: it is the one that steps (SAM shares its param groups).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.base_optimizer, _lr_lambda(spec.train, self.total_steps))
        self.use_amp = spec.train.amp and self.device.type == "cuda"
        self._saved_at: tuple | None = None  # (folder, epoch, batch, step) of the last checkpoint written
        self._checkpoint_step: int | None = None  # the step the checkpoint on disk holds (saved or resumed from)
        self.last_spread: dict[str, float] | None = None
        self.last_threshold: dict[str, Any] | None = None  # calibrated by validate()
        self._warned_collapse = False

    def _build_model(self) -> None:
        from harness.models import build_model

        spec = self.spec
        self.model_kwargs = dict(backbone=spec.backbone, pretrained=spec.pretrained, img_size=spec.img_size,
                                 **spec.backbone_options)
        model = build_model(**self.model_kwargs).to(self.device)
        self.model = self.net = model  # self.net: the bare model, also under DDP
        # the file that initialised the encoder, where the backbone says (capability ``weights``)
        self.init_weights = model.encoder.weights if capable(model.encoder, "backbone", "weights") else None
        self._warn_from_scratch(model.encoder)
        if dd.is_main():
            from harness.reporting.notes import weights_line

            console.print(weights_line({"init_weights": self.init_weights}, spec.pretrained), markup=False)
        if dd.distributed():  # torchrun, even with one process: the DDP path N processes take
            ids = [self.device.index] if self.device.type == "cuda" else None
            unused = heads_without_gradient(spec)
            self.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)

    def _build_loss(self) -> None:
        from harness.models.losses import DetectorLoss, token_losses_active

        lc, size = self.spec.loss, self.spec.img_size
        self.loss = DetectorLoss(
            alpha=lc.alpha, beta=lc.beta, gamma=lc.gamma, sim_form=lc.sim_form, delta=lc.delta, pairs=lc.pairs,
            min_grid=lc.min_grid, dice=lc.dice,
        )
        grid = size // 32
        if (lc.gamma or lc.delta) and not token_losses_active((grid, grid), lc.min_grid) and dd.is_main():
            console.print(
                f"[yellow]note:[/yellow] the stride-32 token grid is {grid}x{grid} at {size} px, below "
                f"{lc.min_grid}x{lc.min_grid}: L_m and L_t are off (use img_size >= {32 * lc.min_grid} to train them)"
            )

    def _build_optimizer(self) -> None:
        from harness.models.sam import SAM

        cfg = self.spec.train
        if cfg.optimizer == "sgd":
            base, base_options = torch.optim.SGD, {"momentum": cfg.momentum}
        elif cfg.optimizer == "adamw":
            base, base_options = torch.optim.AdamW, {}
        else:
            raise ValueError(f"train.optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")
        self.optimizer = SAM(self.model.parameters(), base, rho=cfg.sam_rho, lr=cfg.lr, weight_decay=cfg.weight_decay,
                             **base_options)

    def _build_data(self, cache_root: str, train_items: list[TrainingItem], val_items: list[TrainingItem]) -> None:
        """The self-blend datasets. They take the cache's folder, not an open cache: each DataLoader
        worker opens its own SQLite connection (one cannot cross a fork)."""
        import harness

        spec = self.spec
        blender = harness.plugin("blender", spec.blender, **spec.blender_options)
        self.global_pairs = spec.train.batch_size // 2  # RunConfig.validate(): even and >= 2, so what ran is what was recorded
        self.train_set = SelfBlendDataset(cache_root, train_items, blender, spec.img_size,
                                          spec.train.frames_per_video, spec.seed)
        # Validation fakes are fixed (seed offset, epoch 0): the same blends every epoch.
        self.val_set = (SelfBlendDataset(cache_root, val_items, blender, spec.img_size, 2, spec.seed + 7919)
                        if val_items else None)
        steps_per_epoch = EpochBatches(len(self.train_set), self.global_pairs, spec.seed, 0).steps()
        self.total_steps = steps_per_epoch * spec.train.epochs
        if spec.train.max_steps is not None:
            self.total_steps = min(self.total_steps, spec.train.max_steps)

    # ------------------------------------------------------------------ one step
    def _forward_loss(self, x: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            out = self.model(x)
        return self.loss(out, labels, masks)

    def _clip(self) -> None:
        if self.spec.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)

    def train_step(self, batch: dict[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        # Stochastic depth draws from torch's RNG: seed it per step (and rank) so a resumed run
        # draws what an uninterrupted one would, whatever else touched the RNG in between.
        torch.manual_seed((self.spec.seed * 1_000_003 + step) * 64 + self.rank)
        self.model.train()
        x = normalise(batch["images"], self.device)
        labels = batch["labels"].to(self.device)
        masks = batch["masks"].to(self.device)
        loss, parts = self._forward_loss(x, labels, masks)
        loss.backward()
        self._clip()
        if self.spec.train.sam_rho > 0:
            self.optimizer.first_step(zero_grad=True)  # climb to the sharpest nearby weights
            loss2, _ = self._forward_loss(x, labels, masks)
            loss2.backward()
            self._clip()
            self.optimizer.second_step(zero_grad=True)  # step from there, at the original weights
        else:  # sam_rho 0: the base optimizer alone, one forward/backward (half the cost)
            self.optimizer.base_optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        values = {"loss": float(loss.detach())}
        values.update({k: float(v.detach()) for k, v in parts.items()})
        return values

    # ------------------------------------------------------------------ validation (self-blends only)
    @torch.no_grad()
    def validate(self) -> float | None:
        """AUC on self-blended fakes of the validation reals. Never touches test data.

        Also measures collapse: the spread across images of the pooled feature and of P_C. When
        both are near zero every image looks the same to the classifier; one warning says so.
        """
        if self.val_set is None:
            return None
        from sklearn.metrics import roc_auc_score

        self.model.eval()
        loader = torch.utils.data.DataLoader(
            self.val_set, batch_size=max(1, self.spec.val_batch_size // 2), collate_fn=collate_pairs
        )
        scores, labels, pooled = [], [], []
        for batch in loader:
            out = self.net(normalise(batch["images"], self.device))
            scores.append(torch.sigmoid(out.logit.float()).cpu().numpy())
            labels.append(batch["labels"].numpy())
            pooled.append(out.pooled.float().cpu().numpy())
        y, s = np.concatenate(labels), np.concatenate(scores)
        self.last_spread = collapse_stats(np.concatenate(pooled), s)
        self.last_threshold = eer_threshold(y, s)  # the verdict threshold these weights carry
        warning = collapse_warning(self.last_spread, self.spec)
        if warning and dd.is_main() and not self._warned_collapse:
            console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
            self._warned_collapse = True
        return float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else None

    def _warn_from_scratch(self, encoder: torch.nn.Module) -> None:
        """The paper initialises its encoders from ImageNet; training one from scratch is a different
        experiment (Swin-T stays at chance for hundreds of steps), so say so once."""
        expects = capable(encoder, "backbone", "weights") and encoder.expects_pretrained
        if self.spec.pretrained is False and expects and dd.is_main():
            console.print(
                f"[bold yellow]warning:[/bold yellow] backbone {self.spec.backbone!r} is training from random "
                "weights; the paper initialises it from ImageNet. Pass --pretrained imagenet (timm's weights: "
                "local cache first, else a download) or --pretrained PATH to a local weights file."
            )

    # ------------------------------------------------------------------ checkpoints
    @cached_property
    def _meta(self) -> dict[str, Any]:
        """What model.json records: fixed for the run, so built once."""
        from harness.extend.registry import provenance

        return {
            "model": self.net.config,
            "img_size": self.spec.img_size,
            "harness_version": __version__,
            "plugins": provenance([("backbone", self.spec.backbone), ("blender", self.spec.blender)]),
            "face_detector": self.spec.crop.detector,  # also beside the rule, where older readers look
            "crop": self.spec.crop.to_dict(),  # the preprocessing rule: predict cuts faces the same way
            "init_weights": self.init_weights,  # what initialised the encoder before training (None: random)
            "run": self.spec.run,
        }

    def _save(self, directory: Path, epoch: int, step_in_epoch: int, global_step: int, extra: dict) -> None:
        if not dd.is_main():
            return
        position = (directory, epoch, step_in_epoch, global_step)
        if position == self._saved_at:
            return  # e.g. the end of training right after an epoch-end save: same state
        trainer_state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        state = {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step, **extra}
        # One folder, written aside and renamed into place: a kill leaves the old step or the new one.
        ckpt.save_checkpoint(directory, self.model, self._meta, trainer_state, state, run_key=self.run_key)
        self._saved_at = position
        if directory == self.checkpoint_dir:
            self._checkpoint_step = global_step

    def _history(self, global_step: int) -> list[dict[str, Any]]:
        """The loss per step up to ``global_step``, from train_log.jsonl (not rewritten into every
        checkpoint). A step logged twice (redone after a resume) keeps its last record."""
        from harness.common.bounded import read_jsonl

        loss: dict[int, float] = {}
        log = RunFolder(self.run_dir).log
        if log.is_file():
            for record in read_jsonl(log, warn=lambda text: console.print(f"[yellow]warning:[/yellow] {text}")):
                if "loss" in record and isinstance(record.get("step"), int) and record["step"] <= global_step:
                    loss[record["step"]] = round(record["loss"], 6)
        return [{"step": step, "loss": loss[step]} for step in sorted(loss)]

    @cached_property
    def run_key(self) -> str:
        """The run's stamp (harness.models.bundle.run_stamp of its recorded config): stamped into every
        checkpoint file, so another run's checkpoint is never resumed nor reported as this run's."""
        from harness.models.bundle import run_stamp

        return run_stamp(self.spec.run)

    def _restore(self) -> dict[str, Any] | None:
        loaded = ckpt.load_trainer_state(self.checkpoint_dir, run_key=self.run_key)
        if loaded is None:
            return None
        trainer_state, state = loaded  # verified: weights, trainer state and state.json share one save of this run
        weights = ckpt.load_weights(self.checkpoint_dir)
        try:
            self.net.load_state_dict(weights)
        except RuntimeError as exc:  # weights of another backbone or size: torch lists every tensor
            raise ckpt.CheckpointError(
                f"{self.checkpoint_dir / ckpt.MODEL_FILE} does not fit backbone {self.spec.backbone!r} at "
                f"{self.spec.img_size} px ({ckpt.short_reason(exc)}); it is another model's: rerun with "
                "--no-resume to start over") from None
        self.optimizer.load_state_dict(trainer_state["optimizer"])
        self.scheduler.load_state_dict(trainer_state["scheduler"])
        torch.set_rng_state(trainer_state["torch_rng"])
        return state

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = True, checkpoint_every: int = 50, stop_after: int | None = None) -> TrainOutcome:
        """Train to the configured epochs / max_steps. ``stop_after`` ends early after that many
        steps of this call (tests use it to simulate an interruption). SIGTERM saves a checkpoint
        where training is and raises Preempted (a KeyboardInterrupt): at once while a batch is
        being loaded or collated, at the end of the step or save in progress otherwise
        (harness.common.signals.critical)."""
        with signals.handling():  # signals reach the main thread only: elsewhere a no-op
            try:
                return self._fit(resume, checkpoint_every, stop_after)
            except signals.Terminated as exc:
                if isinstance(exc, Preempted):
                    raise
                # outside a step (starting, between epochs, at the end): the last save is where it stands
                self._say_preempted(self._checkpoint_step)
                raise Preempted() from None

    def _say_preempted(self, step: int | None) -> None:
        if not dd.is_main():
            return
        if step is None:
            console.print("[yellow]SIGTERM before the first checkpoint; run the same command again to start[/yellow]")
            return
        console.print(f"[yellow]SIGTERM: checkpoint saved at step {step}; run the same command again "
                      "(or requeue the job) to resume from there[/yellow]")

    def _fit(self, resume: bool, checkpoint_every: int, stop_after: int | None) -> TrainOutcome:
        cfg = self.spec.train
        start = time.perf_counter()
        at = self._starting_point(resume)
        resumed_from = at.global_step
        with progress(disable=None if self.show_progress is None else not self.show_progress) as bar:
            task = bar.add_task("train", total=self.total_steps, completed=at.global_step, info="")
            while at.epoch < cfg.epochs and at.global_step < self.total_steps:
                steps = self._run_epoch(at, bar, task, checkpoint_every, stop_after)
                if stop_after is not None and at.this_call >= stop_after and at.global_step < self.total_steps:
                    self._pause(at, steps)
                    return TrainOutcome(self.checkpoint_dir, at.global_step, at.epoch, time.perf_counter() - start,
                                        cfg.selection, at.best, at.history, resumed_from)
                if at.step_in_epoch >= steps:
                    self._end_epoch(at)
        with signals.critical():
            return self._finish(at, start, resumed_from)

    def _end_epoch(self, at: _Position) -> None:
        """Validation (best-val) and the epoch's checkpoint, never cut by SIGTERM in between."""
        with signals.critical():
            at.epoch, at.step_in_epoch = at.epoch + 1, 0
            if self.spec.train.val_every and at.epoch % self.spec.train.val_every == 0:
                at.best = self._validate_and_select(at.epoch, at.global_step, at.best)
            self._save(self.checkpoint_dir, at.epoch, 0, at.global_step, {"best": at.best})

    def _starting_point(self, resume: bool) -> _Position:
        from harness.common.bounded import drop_partial_tail

        if dd.is_main() and drop_partial_tail(RunFolder(self.run_dir).log):
            # a kill or a full disk cut the last record short: appending after it would spoil the next one too
            console.print(f"[yellow]warning:[/yellow] {RunFolder(self.run_dir).log}: dropped its partial last line "
                          "(a write cut short)")
        state = self._restore() if resume else None
        if not state:
            return _Position()
        at = _Position(state["epoch"], state["step_in_epoch"], state["global_step"], state.get("best", {}),
                       self._history(state["global_step"]))
        self._checkpoint_step = at.global_step
        if dd.is_main():
            console.print(f"resuming from step {at.global_step} (epoch {at.epoch + 1}, batch {at.step_in_epoch})")
        return at

    def _run_epoch(self, at: _Position, bar: Any, task: Any, checkpoint_every: int, stop_after: int | None) -> int:
        """Train the rest of epoch ``at.epoch`` (or until the step cap or ``stop_after``); returns the
        epoch's number of steps. Ctrl-C saves a checkpoint, then goes on up."""
        self.train_set.set_epoch(at.epoch)
        sampler = EpochBatches(len(self.train_set), self.global_pairs, self.spec.seed, at.epoch, self.rank, self.world,
                               at.step_in_epoch)
        workers = self.spec.train.workers
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=workers,
            worker_init_fn=_train_worker if workers else None, pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        try:
            batches = iter(loader)
            while True:
                asked = time.perf_counter()
                batch = next(batches, None)  # SIGTERM while a batch loads or collates: Terminated here, at once
                if batch is None:
                    break
                waited = time.perf_counter() - asked  # the step's wait for data (train_log "time")
                with signals.critical():  # a step and its checkpoint are never cut in half
                    self._step(at, batch, bar, task, waited)
                    if at.global_step % checkpoint_every == 0:
                        self._save(self.checkpoint_dir, at.epoch, at.step_in_epoch, at.global_step, {"best": at.best})
                if at.global_step >= self.total_steps or (stop_after is not None and at.this_call >= stop_after):
                    break
        except KeyboardInterrupt as exc:
            with signals.critical():
                self._pause(at, sampler.steps())
            if isinstance(exc, signals.Terminated):
                self._say_preempted(at.global_step)
                raise Preempted() from None
            else:
                console.print(f"[yellow]interrupted: checkpoint saved at step {at.global_step}; rerun with --resume to continue")
            raise
        return sampler.steps()

    def _step(self, at: _Position, batch: dict[str, torch.Tensor], bar: Any, task: Any, data_s: float = 0.0) -> None:
        started = time.perf_counter()
        values = self.train_step(batch, at.global_step)  # ends reading the loss: the device has finished the step
        values["loss"] = dd.mean_scalar(values["loss"], self.device)
        step_s = time.perf_counter() - started
        at.global_step += 1
        at.step_in_epoch += 1
        at.this_call += 1
        record = {"step": at.global_step, "epoch": at.epoch + 1, "lr": self.scheduler.get_last_lr()[0], **values,
                  "time": {"data": round(data_s, 6), "step": round(step_s, 6)}}  # seconds: throughput without a profiler
        at.history.append({"step": at.global_step, "loss": round(values["loss"], 6)})
        self._log(record)
        if dd.is_main():
            faults.point("train.step")
        bar.update(task, completed=at.global_step, info=f"epoch {at.epoch + 1} loss {values['loss']:.4f}")
        if bar.disable and dd.is_main() and at.global_step % max(1, self.total_steps // 10) == 0:
            # No live bar (CI logs, pipes): a line every 10 % instead.
            console.print(f"step {at.global_step}/{self.total_steps} epoch {at.epoch + 1} loss {values['loss']:.4f}")

    def _pause(self, at: _Position, epoch_steps: int) -> None:
        """Checkpoint where an early stop left off (the next epoch when this one was complete)."""
        if at.step_in_epoch >= epoch_steps:
            at.epoch, at.step_in_epoch = at.epoch + 1, 0
        self._save(self.checkpoint_dir, at.epoch, at.step_in_epoch, at.global_step, {"best": at.best})
        self._close_loggers()

    def _finish(self, at: _Position, start: float, resumed_from: int) -> TrainOutcome:
        cfg = self.spec.train
        final_auc = self.validate() if cfg.selection == "last" else None
        if final_auc is not None:
            self._log({"step": at.global_step, "epoch": at.epoch, "val_auc": final_auc})
        self._report_validation(final_auc)
        self._close_loggers()
        self._save(self.checkpoint_dir, at.epoch, at.step_in_epoch, at.global_step, {"best": at.best})
        best = at.best
        if cfg.selection == "best-val" and best.get("path"):
            chosen = Path(best["path"])
        else:
            chosen = self.checkpoint_dir
            best = {"epoch": at.epoch, "step": at.global_step, "val_auc": final_auc}
            if dd.is_main():  # the final weights' threshold (best-val's was recorded with them)
                ckpt.record_threshold(chosen, self.last_threshold or no_threshold("no validation split to calibrate on"))
        dd.barrier()
        outcome = TrainOutcome(chosen, at.global_step, at.epoch, time.perf_counter() - start, cfg.selection, best,
                               at.history, resumed_from)
        outcome.init_weights, outcome.collapse = self.init_weights, self.last_spread
        return outcome

    def _log(self, record: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.log(record)

    def _close_loggers(self) -> None:
        for logger in self.loggers:
            logger.close()

    def _report_validation(self, auc: float | None) -> None:
        if self.last_spread is None or not dd.is_main():
            return
        shown = "-" if auc is None else f"{100 * auc:.1f}"
        console.print(
            f"validation (self-blends of held-out reals): AUC {shown}, pooled-feature spread "
            f"{self.last_spread['feature_spread']:.3f}, score spread {self.last_spread['score_spread']:.3f}"
        )

    def _validate_and_select(self, epoch: int, step: int, best: dict[str, Any]) -> dict[str, Any]:
        if self.spec.train.selection != "best-val":
            return best
        auc = self.validate()
        if auc is None:
            return best
        self._log({"step": step, "epoch": epoch, "val_auc": auc})
        if dd.is_main():
            console.print(f"epoch {epoch}: validation AUC on self-blends {auc:.4f}")
        if auc > best.get("val_auc", -1):
            best = {"epoch": epoch, "step": step, "val_auc": auc, "path": str(self.run_dir / "best")}
            if dd.is_main():
                ckpt.save_model(self.run_dir / "best", self.model, {**self._meta, "threshold": self.last_threshold},
                                run_key=self.run_key)
        return best
