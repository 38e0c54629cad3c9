"""The training loop: a pure engine that reports through callbacks and knows nothing of pages or stores.

One ``Trainer`` trains one model, or a model and its twins, *on the very same batches*: each step
draws one batch (same permutation, same augmentation) and every still-active model takes its step
on it. Same seed, same initialisation: each model is built right after ``torch.manual_seed(seed)``,
so a ResNet and its option-A plain twin start from identical weights.

Validation runs at each epoch's end and, so that short runs draw a curve too, every
``total_steps // eval_points`` steps in between (never twice at one step). A mid-epoch evaluation reports
``on_eval`` at its fractional epoch and, like any evaluation, saves "best" when validation accuracy
improves; "last" is still saved at each epoch's end (and every ``CHECKPOINT_EVERY_S``).

Host syncs happen only every ``log_every`` steps: losses, accuracies and gradient norms accumulate
as device tensors in between. A non-finite loss found at a log point ends that model's run as
``diverged``.

The CUDA fast path: the data lives on the GPU and is augmented there, the forward runs under bf16
autocast on channels-last tensors, the optimizer is the fused kernel (``fused=True``), cuDNN picks its
fastest convolutions (``cudnn.benchmark``), and nothing in a step waits for the GPU (no ``.item()``,
``float()`` or device-to-host copy between log points; the epoch's permutation travels from pinned
memory). ``TrainConfig.compile`` adds ``torch.compile`` of the training forward; the first step, which
pays for the compilation, is reported apart as ``compile_s`` and left out of images/s.

Several devices (``group``, see :mod:`.distributed`): each rank takes its share of every global batch,
DDP averages the gradients, BatchNorm normalises over the global batch, metrics and validation are
summed over the ranks, a stop is agreed on at log points, and only the leader checkpoints.

What a step sees is decided once, at setup: a *batch source* and a *logits* function (:mod:`.batches`:
images on the device, or a linear probe's frozen features; the whole model, or only its classifier).
The loop, evaluation and checkpointing never ask which. The models it trains, how each starts and ends,
and the callbacks it reports through are in :mod:`.members`; the optimizer and the learning-rate
schedule in :mod:`.optim`.

Same settings, same numbers (:mod:`.reproducible`): every random draw comes from the seed, and a "last"
checkpoint keeps the batch order's and the augmentation's generator states and the loss and accuracy gathered since
the last log point (gradient norms taken since are reported before it is written), so a run resumed from any "last"
checkpoint — at an epoch's end, or one written on the clock between two log points — logs every number the
uninterrupted run logs. (A stop logs where it stopped, so a stopped and resumed run has that extra point, and the
next log averages the steps after it; a group of processes starts its window afresh after a resume. Weights,
evaluations and later logs are the same.) ``TrainConfig.deterministic`` turns on deterministic algorithms.

Keeping the weights along the way (``TrainConfig.keep_weights_every``, see :mod:`.trajectory`): the plan is
fitted to the disk budget when the trainer is built; the weights are written (by the leader, into each
model's checkpoint folder) before the first step, after every kept step, and where training ends. Each write
copies the weights to the host: a sync every k steps, none in between.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.registry import Dataset
from ..device import resolve_device
from ..models import build_model
from ..models.layers import weight_layers
from ..spec import ModelSpec
from . import distributed, reproducible, trajectory
from ..models.checkpoint import load_train_state, save_checkpoint
from .batches import Batches, FeatureBatches, ImageBatches, Logits, autocast, full_logits, head_logits
from .config import TrainConfig
from .distributed import Group
from .members import Callbacks, Member, MemberResult, MemberSetup
from .optim import lr_lambda, make_optimizer, total_steps

CHECKPOINT_EVERY_S = 120.0  # also save "last" mid-epoch this often, so a crash loses little


class Trainer:
    def __init__(self, specs: Sequence[ModelSpec], data: Dataset, cfg: TrainConfig,
                 callbacks: Callbacks | None = None, checkpoint_dirs: Sequence[Path | None] | None = None,
                 meta: Sequence[dict[str, Any]] | None = None, augment: bool = True,
                 setups: Sequence[MemberSetup] | None = None, group: Group | None = None) -> None:
        """``group``: this process's place among several training the same models together (torchrun);
        None for one process. The batch size is the global batch, split evenly over the group."""
        if not specs:
            raise ValueError("nothing to train: no model specs")
        for spec in specs:
            if spec.in_channels != data.in_channels:
                raise ValueError(f"the model takes {spec.in_channels}-channel images but the data has "
                                 f"{data.in_channels}; set in_channels={data.in_channels}")
            if spec.num_classes != len(data.class_names):
                raise ValueError(f"the model has {spec.num_classes} outputs but the data has "
                                 f"{len(data.class_names)} classes; set num_classes={len(data.class_names)}")
        self.cfg = cfg
        self.data = data
        self.cb = callbacks or Callbacks()
        self.group = group
        self.rank, self.world = (group.rank, group.world_size) if group is not None else (0, 1)
        self.device = resolve_device(cfg.device)
        if group is not None:
            self.device = group.device(self.device.type)
        self.cuda = self.device.type == "cuda"
        if self.cuda and not cfg.deterministic:
            torch.backends.cudnn.benchmark = True  # every step has the same shapes: let cuDNN time its kernels once
        n = len(data.y_train)
        self.batch = min(cfg.batch_size, n)
        share = distributed.share(self.batch, group)
        self.steps_per_epoch = max(1, n // self.batch)  # drop the ragged last batch: BN wants full batches
        self.total_steps = total_steps(cfg, self.steps_per_epoch)  # max_steps when set, else every epoch's
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)  # passes begun (the last may be partial)
        # steps between mid-epoch validations (0: epoch ends only)
        self.eval_every = max(1, self.total_steps // cfg.eval_points) if cfg.eval_points else 0
        self.meta = list(meta) if meta is not None else [{} for _ in specs]
        dirs = list(checkpoint_dirs) if checkpoint_dirs is not None else [None] * len(specs)
        setups = list(setups) if setups is not None else [MemberSetup()] * len(specs)
        head_only = any(s.head_only for s in setups)
        if head_only and len(specs) != 1:
            raise ValueError("a linear probe trains one model at a time")
        if head_only and group is not None:
            raise ValueError("a linear probe trains on one device (it takes seconds); use world_size=1")
        self.members = [self._member(spec, d, st) for spec, d, st in zip(specs, dirs, setups)]
        self.layer_names = self.members[0].norm_names

        self.n_train = n
        self.order_gen = torch.Generator().manual_seed(cfg.seed)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        images = ImageBatches(data, self.device, augment, self.aug_gen, share=share, part=(self.rank, self.world))
        # the one place that knows about linear probes: what a step sees, and how it gets logits
        self.batches: Batches = FeatureBatches(images, self.members[0].model, self.cuda) if head_only else images
        self.logits: Logits = head_logits if head_only else full_logits
        self.step = 0
        self.start_epoch = 0
        self.start_batch = 0
        self.epoch_order_state = self.order_gen.get_state()
        self.compile_s: float | None = None  # seconds the first compiled step took, until logged
        # the run's training time so far, across its attempts (a resumed run carries on from its checkpoint's):
        # the seconds its workers spent in the training loop, evaluations and checkpoints included, not the
        # time it sat stopped or queued. Logged as "train_s" (what a challenge's time budget reads)
        self.train_s_before = 0.0
        self.clock0 = time.monotonic()
        # the weights kept along the way, fitted to the budget now (TrajectoryTooLarge if even two do not fit)
        self.trajectory: trajectory.TrajectoryPlan | None = None
        if cfg.keep_weights_every:
            self.trajectory = trajectory.plan(self.total_steps, cfg.keep_weights_every, cfg.keep_weights_budget_mb,
                                              sum(trajectory.state_bytes(m.model) for m in self.members))

    def _member(self, spec: ModelSpec, ckpt_dir: Path | None, setup: MemberSetup) -> Member:
        torch.manual_seed(self.cfg.seed)
        model = build_model(spec)
        if setup.state_dict is not None:
            missing, unexpected = model.load_state_dict(setup.state_dict, strict=False)
            stray = [k for k in [*missing, *unexpected] if not k.startswith("fc.")]
            if stray:
                raise ValueError(f"the starting weights do not fit this model: {', '.join(stray[:5])}")
        frozen = setup.frozen_in(model)
        for name, p in model.named_parameters():
            p.requires_grad_(name.split(".")[0] not in frozen)
        model = model.to(self.device)
        if self.cuda:
            model = model.to(memory_format=torch.channels_last)
        forward: nn.Module = model
        if self.group is not None:
            model = distributed.global_batchnorm(model, self.cuda)
            forward = distributed.data_parallel(model, self.group, self.device)
        if self.cfg.compile and not setup.head_only:
            forward = torch.compile(forward)
        opt = make_optimizer(self.cfg, model, setup.backbone_lr_mult)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(self.cfg, self.steps_per_epoch))
        norm_names, norm_params = weight_layers(model)
        return Member(spec=spec, model=model, optimizer=opt, scheduler=sched, norm_params=norm_params,
                       norm_names=norm_names, ckpt_dir=Path(ckpt_dir) if ckpt_dir is not None else None,
                       setup=setup, frozen=frozen, forward=forward)

    def _train_mode(self, m: Member) -> None:
        """Train mode, except frozen parts: their BatchNorm keeps its statistics (eval mode)."""
        m.model.train()
        for name in m.frozen:
            module = getattr(m.model, name, None)
            if module is not None:
                module.eval()

    # --- resume ------------------------------------------------------------------------------

    def resume_from(self, checkpoint_jsons: Sequence[Path]) -> None:
        """Continue from "last" checkpoints (one per model, same step) written by this engine."""
        states = [load_train_state(p) for p in checkpoint_jsons]
        if len(states) != len(self.members):
            raise ValueError("one checkpoint per model is needed to resume")
        if len({state["step"] for state, _ in states}) != 1:
            raise ValueError("the checkpoints were saved at different steps; they cannot resume together")
        for m, (state, weights) in zip(self.members, states):
            m.model.load_state_dict(weights, strict=True)
            m.optimizer.load_state_dict(state["optimizer"])
            m.scheduler.load_state_dict(state["scheduler"])
            m.best_val_acc = state["best_val_acc"]
        if self.group is None:  # one process: the metrics gathered since the last log go on where they were
            for m, (state, _) in zip(self.members, states):
                self._restore_window(m, state.get("window"))
        s = states[0][0]
        self.step = s["step"]
        self.start_epoch, self.start_batch = divmod(self.step, self.steps_per_epoch)
        self.epoch_order_state = s["epoch_order_state"]
        self.order_gen.set_state(s["epoch_order_state"])
        if self.start_batch == 0 and self.step > 0:
            # saved at an epoch's end: its order state is the one that epoch began with. Draw that epoch's
            # permutation again, so the next epoch gets its own order, not a replay of the last one's
            torch.randperm(self.n_train, generator=self.order_gen)
        self.aug_gen.set_state(s["aug_state"].to(self.aug_gen.get_state().device))
        self.train_s_before = float(s.get("train_s", 0.0))  # a checkpoint from before it was kept: counts from 0

    def _window(self, m: Member) -> dict[str, Any]:
        """The loss and accuracy ``m`` gathered since the last log point (a checkpoint between two log points keeps
        them, so the first log after a resume averages the very steps the uninterrupted run's does)."""
        return {"loss_sum": None if m.loss_sum is None else m.loss_sum.detach().cpu(),
                "correct": None if m.correct is None else m.correct.cpu(), "seen": m.seen}

    def _restore_window(self, m: Member, window: Any) -> None:
        """Undo :meth:`_window` (a checkpoint written before windows were kept has none: the window starts empty)."""
        if not isinstance(window, dict):
            return
        to = self.device
        m.loss_sum = None if window["loss_sum"] is None else window["loss_sum"].to(to)
        m.correct = None if window["correct"] is None else window["correct"].to(to)
        m.seen = int(window["seen"])

    def _report_norms(self, i: int, m: Member) -> None:
        """Hand out the gradient norms ``m`` took since the last report (each with its own step: when they are
        reported changes no number). At log points, and before a "last" checkpoint, so that what a resumed run
        reports again starts after the checkpoint's step."""
        for step, norms in m.pending_norms:
            self.cb.on_grad_norms(i, step, norms.float().cpu().tolist())
        m.pending_norms.clear()

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> list[MemberResult]:
        """Train to the end (or a stop); each model's result. The process-wide switches of determinism (or of the
        CUDA fast path) are set for the run and put back afterwards (:func:`.reproducible.configured`)."""
        with reproducible.configured(self.device, self.cfg.deterministic):
            return self._run()

    def _run(self) -> list[MemberResult]:
        cfg = self.cfg
        for i, m in enumerate(self.members):
            self.cb.on_start(i, self.total_steps, m.norm_names)
        self.batches.prepare()  # before the clock starts: a linear probe's feature pass is not training
        self.clock0 = time.monotonic()
        self._start_trajectory()
        stopped = False
        last_ckpt = time.monotonic()
        t_log = time.perf_counter()
        steps_since_log = 0
        compile_clock = time.perf_counter() if cfg.compile else None  # the first step compiles the models
        for epoch in range(self.start_epoch, self.epochs):
            if epoch != self.start_epoch or self.start_batch == 0:
                self.epoch_order_state = self.order_gen.get_state()
            else:
                self.order_gen.set_state(self.epoch_order_state)
            perm = self._to_device(torch.randperm(self.n_train, generator=self.order_gen))
            for m in self._active():
                self._train_mode(m)
            first = self.start_batch if epoch == self.start_epoch else 0
            for b in range(first, self.steps_per_epoch):
                x, y = self.batches.train(perm[b * self.batch:(b + 1) * self.batch])
                track = cfg.grad_norm_every and self.step % cfg.grad_norm_every == 0
                for m in self._active():
                    with autocast(self.cuda):
                        out = self.logits(m.forward, x)
                    loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
                    m.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if track:
                        m.pending_norms.append((self.step, torch.stack(torch._foreach_norm(
                            [p.grad for p in m.norm_params]))))
                    m.optimizer.step()
                    m.scheduler.step()
                    correct = (out.argmax(1) == y).sum()
                    m.loss_sum = loss.detach() * len(y) if m.loss_sum is None else m.loss_sum + loss.detach() * len(y)
                    m.correct = correct if m.correct is None else m.correct + correct
                    m.seen += len(y)
                self.step += 1
                steps_since_log += 1
                if self.trajectory is not None and self.trajectory.keeps(self.step):
                    self._keep_weights()
                if compile_clock is not None:  # its time is compilation, reported apart, not training speed
                    self._sync()
                    self.compile_s = time.perf_counter() - compile_clock
                    compile_clock, t_log, steps_since_log = None, time.perf_counter(), 0
                end_of_epoch = b == self.steps_per_epoch - 1 or self.step == self.total_steps  # or max_steps
                if self.step % cfg.log_every == 0 or end_of_epoch:
                    self._sync()  # a log point syncs anyway: time the GPU's work, not its queue
                    now = time.perf_counter()
                    self._flush_logs(epoch + (b + 1) / self.steps_per_epoch,
                                     steps_since_log * self.batch / max(now - t_log, 1e-9))
                    t_log, steps_since_log = time.perf_counter(), 0
                    if not self._active():
                        break
                if self.step == self.total_steps:  # max_steps reached mid-epoch: the run ends here
                    break
                if self._should_stop():
                    stopped = True
                    break
                if self.eval_every and self.step % self.eval_every == 0 and not end_of_epoch:
                    t_eval = time.perf_counter()
                    self._evaluate(epoch + (b + 1) / self.steps_per_epoch)
                    for m in self._active():
                        self._train_mode(m)
                    t_log += time.perf_counter() - t_eval  # images/s measures training, not evaluation
                    if not self._active():
                        break
                if time.monotonic() - last_ckpt > CHECKPOINT_EVERY_S and not end_of_epoch:
                    self._checkpoint_all(epoch + (b + 1) / self.steps_per_epoch, "last")
                    last_ckpt = time.monotonic()
                    t_log, steps_since_log = time.perf_counter(), 0
            if not self._active():
                break
            if stopped and self.step % self.steps_per_epoch:  # stopped mid-epoch: save where we are
                ep = epoch + (self.step - epoch * self.steps_per_epoch) / self.steps_per_epoch
                self._flush_logs(ep, None)
                self._checkpoint_all(ep, "last")
                break
            self._evaluate_and_checkpoint(epoch + (self.step - epoch * self.steps_per_epoch) / self.steps_per_epoch)
            last_ckpt = time.monotonic()
            t_log, steps_since_log = time.perf_counter(), 0  # images/s measures training, not evaluation
            if stopped:
                break

        self._keep_weights()  # where training ended (a stop, or the last step if not kept yet); not a diverged model
        if not stopped:
            self._test()
        results = []
        for i, m in enumerate(self.members):
            if m.status == "running":
                m.status = "stopped" if stopped else "done"
            self.cb.on_end(i, m.status, m.message)
            results.append(MemberResult(m.status, m.message, self.step, m.best_val_acc, dict(m.last_metrics)))
        return results

    def train_s(self) -> float:
        """Seconds of training so far, this attempt's and the ones before it (see ``train_s_before``)."""
        return self.train_s_before + time.monotonic() - self.clock0

    def _active(self) -> list[Member]:
        return [m for m in self.members if m.status == "running"]

    # --- the weights along the way ------------------------------------------------------------------

    def _start_trajectory(self) -> None:
        """Write the plan beside each model's snapshots and keep the initial weights (a resumed run has them)."""
        if self.trajectory is None or self.rank != 0:
            return
        for m in self.members:
            if m.ckpt_dir is not None:
                trajectory.save_plan(m.ckpt_dir, self.trajectory)
        if self.step == 0:
            self._keep_weights()

    def _keep_weights(self) -> None:
        """Keep every running model's weights at this step (once per step; the leader alone writes)."""
        if self.trajectory is None or self.rank != 0:
            return
        for m in self._active():
            if m.ckpt_dir is not None and m.kept_step != self.step:
                trajectory.save_snapshot(m.ckpt_dir, self.step, m.model)
                m.kept_step = self.step

    def _sync(self) -> None:
        """Wait for the GPU (at log points and the first compiled step only); nothing on the CPU."""
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A CPU tensor on the training device; on CUDA from pinned memory, so the copy does not wait for the GPU."""
        return t.pin_memory().to(self.device, non_blocking=True) if self.cuda else t.to(self.device)

    def _should_stop(self) -> bool:
        """Whether to stop after this step. One process asks its callbacks every step; a group agrees at log
        points only (a collective and a host sync, where the log already syncs): a stop asked of any rank
        stops them all after the same step."""
        if self.group is None:
            return self.cb.should_stop()
        if self.step % self.cfg.log_every and self.step % self.steps_per_epoch:
            return False
        return distributed.any_rank(self.cb.should_stop(), self.device)

    def _reduce_logs(self) -> None:
        """In a group: sum the accumulated loss and accuracy of every rank (one all-reduce), so the leader logs
        the global batch's. Every rank has the same running models and counts, so they all take part."""
        members = [m for m in self.members if m.status == "running" and m.seen]
        if self.group is None or not members:
            return
        sums = distributed.all_sum(torch.stack([torch.stack([m.loss_sum.float(), m.correct.float()])
                                                for m in members]))
        for m, row in zip(members, sums):
            m.loss_sum, m.correct, m.seen = row[0], row[1], m.seen * self.world

    def _flush_logs(self, epoch: float, images_per_s: float | None) -> None:
        """The one host sync: read accumulated loss/accuracy, check for divergence, hand out metrics.
        ``images_per_s`` is None or 0 when no step was timed since the last log."""
        self._reduce_logs()
        compile_s, self.compile_s = self.compile_s, None  # reported once, with the first log after it
        for i, m in enumerate(self.members):
            if m.status != "running" or m.seen == 0:
                continue
            loss = float(m.loss_sum) / m.seen
            acc = float(m.correct) / m.seen
            lr = max(g["lr"] for g in m.optimizer.param_groups)  # the head's, when the backbone learns slower
            metrics = {"train/loss": loss, "train/acc": acc, "lr": lr, "train_s": self.train_s()}
            if images_per_s:
                metrics["images_per_s"] = images_per_s
            if compile_s is not None:
                metrics["compile_s"] = compile_s  # the first step: compilation of every model of the job
            m.loss_sum, m.correct, m.seen = None, None, 0
            self._report_norms(i, m)
            if not math.isfinite(loss):
                m.status = "diverged"
                m.message = f"the training loss became {loss} by step {self.step}; try a lower learning rate"
                self.cb.on_log(i, self.step, epoch, {k: v for k, v in metrics.items() if k != "train/loss"})
                continue
            m.last_metrics.update(metrics)
            self.cb.on_log(i, self.step, epoch, metrics)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation loss and accuracy of ``model`` (in eval mode). In a group each rank takes its part of
        the validation chunks and the sums are all-reduced: every rank gets the same numbers."""
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        n = 0
        for x, y in self.batches.val():
            with autocast(self.cuda):
                out = self.logits(model, x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
            n += len(y)
        if self.group is not None:
            totals = distributed.all_sum(torch.stack([loss_sum.double(), correct.double(),
                                                      torch.tensor(float(n), dtype=torch.float64, device=self.device)]))
            loss_sum, correct, n = totals[0], totals[1], int(totals[2].item())
        n = max(1, n)
        return {"val/loss": float(loss_sum) / n, "val/acc": float(correct) / n}

    def _test(self) -> None:
        """When the data has a test split apart from val (He et al.'s 45k/5k CIFAR split: val guides, the official
        test set is reported once): each model that finished, as it ended, on it — reported as ``test/loss`` and
        ``test/acc`` at the last step through ``on_log``. A linear probe has none (its batches are features)."""
        images = self.batches
        x_test = getattr(self.data, "pixels_test", getattr(self.data, "x_test", None))  # as kept (uint8 or float)
        if x_test is None or not isinstance(images, ImageBatches):
            return
        kept = images.x_val, images.y_val
        images.x_val, images.y_val = x_test.to(self.device), self.data.y_test.to(self.device)
        try:  # evaluate() reads the val split of the batches: for this pass, the test split is it
            for i, m in enumerate(self.members):
                if m.status == "running":
                    metrics = {k.replace("val/", "test/"): v for k, v in self.evaluate(m.model).items()}
                    m.last_metrics.update(metrics)
                    self.cb.on_log(i, self.step, self.step / self.steps_per_epoch, metrics)
        finally:
            images.x_val, images.y_val = kept

    def _evaluate_and_checkpoint(self, epoch: float) -> None:
        self._evaluate(epoch)
        self._checkpoint_all(epoch, "last")

    def _evaluate(self, epoch: float) -> None:
        """Validate every running model, report it, and save "best" where validation accuracy improved."""
        for i, m in enumerate(self.members):
            if m.status != "running":
                continue
            metrics = self.evaluate(m.model)
            if not math.isfinite(metrics["val/loss"]):
                m.status = "diverged"
                m.message = f"the validation loss became {metrics['val/loss']} at epoch {epoch:.3g}"
                continue
            m.last_metrics.update(metrics)
            self.cb.on_eval(i, self.step, epoch, metrics)
            if metrics["val/acc"] > m.best_val_acc:
                m.best_val_acc = metrics["val/acc"]
                self._checkpoint(i, m, epoch, "best")

    def _checkpoint_all(self, epoch: float, tag: str) -> None:
        for i, m in enumerate(self.members):
            if m.status == "running":
                self._checkpoint(i, m, epoch, tag)

    def _checkpoint(self, i: int, m: Member, epoch: float, tag: str) -> None:
        if m.ckpt_dir is None or self.rank != 0:  # in a group the leader alone writes (every rank has the same state)
            return
        if tag == "last":
            self._report_norms(i, m)
        state = {
            "optimizer": m.optimizer.state_dict(), "scheduler": m.scheduler.state_dict(), "step": self.step,
            "best_val_acc": m.best_val_acc, "epoch_order_state": self.epoch_order_state,
            "aug_state": self.aug_gen.get_state().cpu(), "window": self._window(m), "train_s": self.train_s(),
        }
        meta = {
            **self.meta[i], "spec": m.spec.to_dict(), "train": self.cfg.to_dict(),
            "class_names": list(self.data.class_names), "mean": list(self.data.mean), "std": list(self.data.std),
            "step": self.step, "epoch": epoch, "metrics": dict(m.last_metrics), "best_val_acc": m.best_val_acc,
            "reproducibility": reproducible.conditions(self.device, self.cfg.deterministic),
        }
        path = save_checkpoint(m.ckpt_dir, tag, m.model, meta, state if tag == "last" else None)
        self.cb.on_checkpoint(i, tag, path, dict(m.last_metrics))
