"""The training loop: seeded epochs, AdamW with warm-up, checkpoints, early stopping on a dev score."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress, progress_enabled
from ..errors import TrainingDivergedError

from .base import _DEV_METRIC_MAX_TRAIN, START_MAP_PAIRS
from .checkpoints import _ckpt_dirs, _load_checkpoint, _prefixed, _restore_optimizer, _save_checkpoint
from .environment import _embedding_dim
from .distil import add_start_map, dev_inputs, teacher_vectors
from .losses import _Losses


class _TrainingLoop(_Losses):
    """The epoch loop, dev scores and early stopping (a mixin of :class:`~langalign.tuning.EncoderTuner`)."""

    mode: str
    seed: int
    epochs: int
    lr: float
    head_lr: float
    warmup: float
    weight_decay: float
    patience: int | None
    _teacher: Any  # distil mode: the teacher encoder (set by fit)
    start_map: bool
    start_map_: dict[str, Any] | None

    def _train(self, model: Any, data: dict[str, Any], loss_name: str, device: str, key: str, ckdir: Path | None,
               resume: bool, callback: Any, show_progress: bool | None) -> dict[str, Any]:
        import torch

        dim = _embedding_dim(model)
        seed = int(self.seed)
        task = self.mode == "task"
        pairs_task = task and data["pairs"] is not None

        # The trainable parts: the encoder, plus a classifier for the softmax loss.
        torch.manual_seed(seed)
        head = None
        if loss_name == "softmax":
            head = torch.nn.Linear(dim * (3 if pairs_task else 1), int(data["classes"].size)).to(device)
        class_index = {c: i for i, c in enumerate(data["classes"].tolist())} if task else {}
        y_idx = np.array([class_index[c] for c in data["labels"].tolist()], dtype=np.int64) if task else None

        # Parallel mode: the teacher is the untouched base model (= the student before its first step).
        teacher = None
        if self.mode == "distil":  # another model's vectors of the English texts (cached), computed once
            teacher = teacher_vectors(self._teacher, data, None if self.start_map else dim)
            if self.start_map:  # a ridge map student(en) -> teacher(en) as the last layer, then tune it all
                k = min(len(data["english"]), START_MAP_PAIRS)
                S = self._encode(model, data["english"][:k], device)
                self.start_map_ = add_start_map(model, S, teacher["train"][:k])
                model.to(device)
                dim = _embedding_dim(model)
        elif not task:
            teacher = {
                "train": self._encode(model, data["english"], device),
                "dev": self._encode(model, data["dev"]["english"], device),
            }

        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": float(self.lr),
                   "base_lr": float(self.lr)}]
        if head is not None:
            groups.append({"params": list(head.parameters()), "lr": float(self.head_lr),
                           "base_lr": float(self.head_lr)})
        opt = torch.optim.AdamW(groups, lr=float(self.lr), weight_decay=float(self.weight_decay))
        n_train = len(data["texts"] if task else data["english"])
        steps_per_epoch = self._steps_per_epoch(loss_name, y_idx, n_train)
        total_steps = steps_per_epoch * int(self.epochs)
        warm = max(1, int(round(float(self.warmup) * total_steps))) if self.warmup > 0 else 0
        modules = {"model": model} if head is None else {"model": model, "head": head}

        history: list[dict[str, Any]] = []
        start_epoch, step, bad, resumed_from = 1, 0, 0, None
        best_epoch, best_score, best_weights, before = 0, None, None, None
        if ckdir is not None and not resume:
            for _, p in _ckpt_dirs(ckdir):  # a fresh run replaces an earlier run's checkpoints
                shutil.rmtree(p, ignore_errors=True)
        if ckdir is not None and resume:
            ck = _load_checkpoint(ckdir, key)
            if ck is not None:
                meta, tensors = ck["meta"], ck["tensors"]
                for prefix, module in modules.items():
                    module.load_state_dict(_prefixed(tensors, prefix), strict=True)
                _restore_optimizer(opt, meta, tensors)
                history, step, bad, before = meta["history"], int(meta["step"]), int(meta["bad_epochs"]), meta["before"]
                best_epoch, best_score = int(meta["best_epoch"]), meta["best_score"]
                best_weights = (_prefixed(tensors, "best") if meta["has_best"] else
                                {k: v.detach().clone() for k, v in model.state_dict().items()})
                resumed_from = int(meta["epoch"])
                start_epoch = int(self.epochs) + 1 if meta.get("done") else resumed_from + 1
        metric, higher = ("accuracy", True) if task else ("mse", False)
        if before is None:
            before = {"score": self._dev_score(model, data, teacher, device)}
            if not task:
                before["top1"] = self._top1(model, data, device, teacher)

        show = progress_enabled(show_progress, None)
        last = start_epoch - 1
        for epoch in range(start_epoch, int(self.epochs) + 1):
            # Every epoch's randomness (order, pairs, dropout) comes from (seed, epoch) alone,
            # so an epoch replayed after a resume is the same epoch.
            torch.manual_seed(seed * 1_000_003 + epoch)
            rng = np.random.default_rng([seed, epoch])
            batches = self._batches(loss_name, y_idx, rng, n_train)
            model.train()
            if head is not None:
                head.train()
            bar = progress(batches, total=len(batches), desc=f"tune {self.mode} epoch {epoch}/{self.epochs}",
                           show=show, unit="step")
            losses = []
            params = [p for g in opt.param_groups for p in g["params"]]
            for batch in bar:
                factor = ((step + 1) / warm if step < warm
                          else max(0.0, (total_steps - step) / max(1, total_steps - warm)))
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * factor
                loss = self._loss(model, head, batch, data, loss_name, y_idx, teacher, device)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(f"tuning diverged: the training loss became {loss.item()} at epoch "
                                                f"{epoch}, step {step + 1}; lower lr (now {self.lr:g})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                step += 1
                losses.append(float(loss.item()))
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
            score = self._dev_score(model, data, teacher, device, epoch)
            last = epoch
            if best_score is None or (score > best_score + 1e-12 if higher else score < best_score - 1e-12):
                best_epoch, best_score, bad = epoch, score, 0
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
            history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 6) if losses else None,
                            f"dev_{metric}": round(float(score), 6), "steps": step})
            stop = self.patience is not None and bad > int(self.patience)
            if ckdir is not None:
                meta = {"run_key": key, "epoch": epoch, "done": stop or epoch == int(self.epochs), "step": step,
                        "history": history, "best_epoch": best_epoch, "best_score": best_score,
                        "bad_epochs": bad, "before": before}
                _save_checkpoint(ckdir, meta, modules, best_weights if best_epoch != epoch else None, opt)
            if callback is not None:
                callback(epoch, dict(history[-1], best_epoch=best_epoch))
            if stop:
                break
        if best_weights is not None and best_epoch != (history[-1]["epoch"] if history else last):
            model.load_state_dict(best_weights, strict=True)  # a later epoch was worse: back to the best one
        model.eval()
        assert best_score is not None  # epoch 0 (the untuned model) is always scored
        scores = {"metric": metric, "higher_is_better": higher, "before": round(float(before["score"]), 6),
                  "best": round(float(best_score), 6), "best_epoch": best_epoch,
                  "per_epoch": [h[f"dev_{metric}"] for h in history]}
        if not task:
            scores["dev_top1_before"] = before["top1"]
            scores["dev_top1"] = self._top1(model, data, device, teacher)
        return {"history": history, "best_epoch": best_epoch, "resumed_from": resumed_from, "dev_scores": scores}

    def _encode(self, model: Any, texts: list[str], device: str) -> np.ndarray:
        return model.encode(texts, batch_size=64, show_progress_bar=False, convert_to_numpy=True, device=device)

    def _dev_score(self, model: Any, data: dict[str, Any], teacher: Any, device: str, epoch: int = 0) -> float:
        """Task: accuracy of a logistic-regression head on the dev split; parallel: dev MSE to the teacher."""
        import warnings

        from ..heads import LogisticRegressionHead, pair_features

        def finite(V: np.ndarray) -> np.ndarray:
            # A step too large leaves the weights NaN/inf while the last loss was still finite: the
            # encoder's vectors say so first. The same message as a diverging neural map.
            if not np.isfinite(V).all():
                raise TrainingDivergedError(f"tuning diverged at epoch {epoch}: the encoder's vectors became "
                                            f"NaN/inf; lower lr (now {self.lr:g})")
            return V

        if self.mode == "parallel":
            S = finite(self._encode(model, data["dev"]["translations"], device))
            return float(np.mean((S - teacher["dev"]) ** 2))
        if self.mode == "distil":  # the translations when given (the cross-lingual question), else English
            S = finite(self._encode(model, dev_inputs(data), device))
            return float(np.mean((S - teacher["dev"]) ** 2))
        n = len(data["texts"])
        sub = np.arange(n)
        if n > _DEV_METRIC_MAX_TRAIN:
            sub = np.sort(np.random.default_rng([int(self.seed), 31]).choice(n, _DEV_METRIC_MAX_TRAIN, replace=False))

        def feats(texts: list[str], pairs: list[str] | None) -> np.ndarray:
            U = finite(self._encode(model, texts, device))
            return U if pairs is None else pair_features(U, finite(self._encode(model, pairs, device)))

        Xtr = feats([data["texts"][i] for i in sub], None if data["pairs"] is None else [data["pairs"][i] for i in sub])
        Xdv = feats(data["dev"]["texts"], data["dev"]["pairs"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegressionHead().fit(Xtr, data["labels"][sub])
        pred = clf.predict(Xdv)
        return float(np.mean(pred.astype(str) == data["dev"]["labels"].astype(str)))

    def _top1(self, model: Any, data: dict[str, Any], device: str, teacher: Any = None) -> float:
        """Parallel mode: share of dev translations whose nearest English sentence (cosine) is their own;
        distil mode: the same with the English side in the teacher's space (the student's translations,
        or held-out English, queried into an index of teacher vectors: the bridge's question)."""
        if self.mode == "distil":
            S, E = self._encode(model, dev_inputs(data), device), teacher["dev"]
        else:
            S = self._encode(model, data["dev"]["translations"], device)
            E = self._encode(model, data["dev"]["english"], device)
        S = S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        return round(float(np.mean(np.argmax(S @ E.T, axis=1) == np.arange(len(S)))), 6)
