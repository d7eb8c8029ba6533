"""The paper's neural mappers (Fully Connected and AutoEncoder), trained with torch.

Both have two forms:

- ``residual=True`` (default): output = closed-form linear map + network, with
  the network's last layer initialised to zero. Training starts exactly at the
  cross-validated ridge solution and early stopping keeps the best held-out
  epoch *including epoch 0*, so the network can only add to the linear map on
  held-out pairs. This keeps the map sane on text unlike the training pairs
  (a deep MLP fitted on software-manual pairs otherwise collapses on news).
- ``residual=False``: the paper's plain form (network alone).

Under 10 pairs there is no validation split, so nothing can judge a network: a
residual net then stays at epoch 0 (the linear map, no training cost) and a plain
one trains all epochs; both warn (:class:`~langalign.mappers.stats.UnderdeterminedWarning`).

Training can checkpoint every epoch (``fit(..., checkpoint_dir=DIR)``) and resume
from the last checkpoint (``resume=True``) with the same result as an
uninterrupted run: a checkpoint holds the weights, the Adam moments, the RNG
states, the best-so-far weights, history and early-stopping counters
(see :mod:`langalign.mappers.checkpoint`).
"""
from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from .._validation import (MAX_DIM, MAX_LAYERS, check_bool_param, check_choice_param, check_float_param,
                           check_int_param, check_matrix, check_not_constant, check_pairs)
from ..errors import ArtefactError, TrainingDivergedError
from .base import BaseMapper, expect_shape
from .linear import LinearMapper
from .stats import UnderdeterminedWarning

LOSSES = ("mse", "cosine", "infonce")
# Adam steps are ~lr per weight; beyond 1 training can only diverge (the usual range is 1e-4 .. 1e-2).
MAX_LR = 1.0
MAX_EPOCHS = 1_000_000


def _torch():
    import torch

    return torch


@contextmanager
def deterministic_torch() -> Iterator[None]:
    """Torch's deterministic algorithms for the duration of a fit, then the caller's setting again.

    On CPU the ops langalign trains with are deterministic already (a refit with the same seed
    gives the same bytes, with 1 or 2 threads alike: ``bench/reproducibility.py``); on CUDA this
    picks the deterministic kernels (warning where an op has none) and cuBLAS's fixed workspace.
    """
    torch = _torch()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def resolve_device(device: str) -> str:
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available; use device='cpu' or 'auto'")
    return device


def _mlp_layout(dims: list[int], dropout: float) -> list[Any]:
    """The layers of :func:`_mlp` as ``(in, out)`` for a Linear, else "relu"/"dropout".

    Pure Python: the loader derives tensor names and shapes from it without building a net.
    """
    layers: list[Any] = []
    for i in range(len(dims) - 1):
        layers.append((dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append("relu")
            if dropout > 0:
                layers.append("dropout")
    return layers


def _mlp(dims: list[int], dropout: float):
    """Linear layers with ReLU and Dropout between them (none after the last)."""
    nn = _torch().nn
    layers = [nn.Linear(*lay) if isinstance(lay, tuple) else nn.ReLU() if lay == "relu" else nn.Dropout(dropout)
              for lay in _mlp_layout(dims, dropout)]
    return nn.Sequential(*layers)


def _mlp_shapes(dims: list[int], dropout: float, prefix: str, fields: str) -> dict:
    """``state_dict`` names -> (shape, fields) of ``_mlp(dims, dropout)``, under ``prefix``."""
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for i, lay in enumerate(_mlp_layout(dims, dropout)):
        if isinstance(lay, tuple):
            out[f"{prefix}{i}.weight"] = ((lay[1], lay[0]), fields)
            out[f"{prefix}{i}.bias"] = ((lay[1],), fields)
    return out


class _NeuralMapper(BaseMapper):
    """Training loop, losses, early stopping, residual path; subclasses build the net."""

    # Parameters every subclass's __init__ stores (declared for the type checker).
    dropout: float
    loss: str
    residual: bool
    lr: float
    weight_decay: float
    epochs: int
    batch_size: int
    val_fraction: float
    patience: int
    temperature: float
    seed: int
    device: str
    linear_params: dict | None
    linear_: LinearMapper | None

    def _build_net(self, d_in: int, d_out: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def _net_shapes(self, d_in: int, d_out: int, field: str) -> dict:  # pragma: no cover - abstract
        """``net.*`` tensors of ``_build_net(d_in, d_out)``: name -> (shape, config fields)."""
        raise NotImplementedError

    def _validate_params(self) -> None:
        """Every training parameter, in one place (fit, sharded fit and loading a config call it)."""
        check_float_param("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        check_choice_param("loss", self.loss, LOSSES)
        check_bool_param("residual", self.residual)
        check_float_param("lr", self.lr, 0.0, MAX_LR, lo_open=True)
        check_float_param("weight_decay", self.weight_decay, 0.0)
        check_int_param("epochs", self.epochs, 0, MAX_EPOCHS)
        check_int_param("batch_size", self.batch_size, 1, 1 << 31)
        check_float_param("val_fraction", self.val_fraction, 0.0, 1.0, hi_open=True)
        check_int_param("patience", self.patience, 0, MAX_EPOCHS)
        check_float_param("temperature", self.temperature, 0.0, lo_open=True)
        check_int_param("seed", self.seed, 0, 2**63 - 1)
        dev = self.device
        if not (isinstance(dev, str) and (dev in ("auto", "cpu", "mps") or dev == "cuda"
                                          or (dev.startswith("cuda:") and dev[5:].isdigit()))):
            raise ValueError(f"device must be 'auto', 'cpu', 'mps' or 'cuda[:N]', got {dev!r}")
        lp = self.linear_params
        if lp is not None:
            if not isinstance(lp, dict):
                raise ValueError(f"linear_params must be None or an object of LinearMapper parameters, got {lp!r}")
            unknown = sorted(set(lp) - set(LinearMapper._param_names()))
            if unknown:
                raise ValueError(f"linear_params: unknown LinearMapper parameters {unknown}")
            try:
                LinearMapper(**lp)._validate_params()
            except ValueError as e:
                raise ValueError(f"linear_params: {e}") from None

    # -- training ----------------------------------------------------------------
    def fit(self, X: Any, Y: Any, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False) -> _NeuralMapper:
        """Train on pairs ``X[i] -> Y[i]``.

        ``checkpoint_dir``: write a checkpoint (safetensors + JSON, atomically) after
        every epoch. ``resume=True``: continue from the newest valid checkpoint there
        (or start afresh if there is none); the result equals an uninterrupted run
        with the same seed. Without ``resume``, old checkpoints in the folder are
        replaced. A checkpoint made for other data or parameters is refused.
        """
        with deterministic_torch():
            return self._fit(X, Y, checkpoint_dir, resume)

    def _fit(self, X: Any, Y: Any, checkpoint_dir: str | os.PathLike | None, resume: bool) -> _NeuralMapper:
        from . import checkpoint as ckpt_mod

        torch = _torch()
        self._validate_params()
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        check_not_constant(X, "X")
        check_not_constant(Y, "Y")
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir (the folder the interrupted run wrote)")
        ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        run_key = ckpt_mod.run_key(X, Y, self.get_params(), type(self).__name__) if ckpt_dir is not None else ""
        n, d_in, d_out = X.shape[0], X.shape[1], Y.shape[1]
        # Under 10 pairs there is no validation split: nothing could tell whether a network
        # correction generalises, so a residual net stays at epoch 0 (the linear map) and costs
        # no training; the plain net (nothing to fall back on) trains, memorising the pairs.
        epochs = 0 if (self.residual and n < 10) else self.epochs
        self._warn_underdetermined(n, d_in, d_out)
        device = resolve_device(self.device)
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(n)
        n_val = int(round(n * self.val_fraction)) if n >= 10 else 0
        val_idx, tr_idx = perm[:n_val], perm[n_val:]

        if self.residual:
            # The linear base is fitted on the training split only, so that the
            # validation split stays an honest judge of everything that follows.
            base = LinearMapper(**(self.linear_params or {})).fit(X[tr_idx], Y[tr_idx])
            self.linear_ = base
        else:
            self.linear_ = None
        net, opt = self._new_net(d_in, d_out, device)
        Xt = torch.from_numpy(X).to(device)
        Yt = torch.from_numpy(Y).to(device)
        if self.residual:
            Bt = torch.from_numpy(base.transform(X)).to(device)
        gen = torch.Generator().manual_seed(self.seed)

        def predict(idx):
            out = net(Xt[idx])
            return out + Bt[idx] if self.residual else out

        def val_loss() -> float:
            if n_val == 0:
                return float("nan")
            net.eval()
            with torch.no_grad():
                losses = [self._loss(predict(torch.from_numpy(val_idx[s : s + 4096]).to(device)),
                                     Yt[torch.from_numpy(val_idx[s : s + 4096]).to(device)]).item()
                          * len(val_idx[s : s + 4096]) for s in range(0, n_val, 4096)]
            return float(sum(losses) / n_val)

        tr_t = torch.from_numpy(tr_idx)

        def train_epoch() -> tuple[float, int]:
            order = tr_t[torch.randperm(len(tr_t), generator=gen)].to(device)
            total, count = 0.0, 0
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                if len(idx) < 2 and self.loss == "infonce":
                    continue
                total += self._step(net, opt, predict(idx), Yt[idx]) * len(idx)
                count += len(idx)
            return total, count

        return self._train_epochs(net, opt, gen, rng, device, train_epoch, val_loss, n_val, ckpt_dir, run_key,
                                  resume, n, d_in, d_out, epochs=epochs)

    def _warn_underdetermined(self, n: int, d_in: int, d_out: int) -> None:
        """Under 10 pairs (no validation split, no early stopping): say what happens instead of a network fit."""
        if n >= 10:
            return
        n_params = sum(math.prod(shape) for shape, _ in self._net_shapes(d_in, d_out, "").values())
        if self.residual:
            what = ("the network correction is not trained (it could only memorise them) and the map is its "
                    "linear part")
        else:
            what = (f"the {n_params:,}-parameter network is trained for all {self.epochs} epochs and can only "
                    "memorise them")
        warnings.warn(f"{type(self).__name__}: only {n} pairs, too few for a validation split (10 or more), so "
                      f"nothing can judge a network; {what}. Use many more pairs, or LinearMapper",
                      UnderdeterminedWarning, stacklevel=4)

    # -- the training machinery shared with langalign.scale.sharded_fit ---------------
    def _new_net(self, d_in: int, d_out: int, device: str):
        """A freshly seeded network and its Adam optimiser; residual nets start as the identity correction."""
        torch = _torch()
        torch.manual_seed(self.seed)
        net = self._build_net(d_in, d_out)
        if self.residual:
            # Zero last layer: epoch 0 is exactly the linear base, so early stopping can keep it.
            last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
            torch.nn.init.zeros_(last.weight)
            torch.nn.init.zeros_(last.bias)
        net = net.to(device)
        return net, torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _step(self, net, opt, pred, target) -> float:
        loss = self._loss(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def _train_epochs(self, net, opt, gen, rng: np.random.Generator, device: str, train_epoch, val_loss,
                      n_val: int, ckpt_dir: Path | None, run_key: str, resume: bool, n: int, d_in: int,
                      d_out: int, epochs: int | None = None) -> _NeuralMapper:
        """Epochs with early stopping, a checkpoint after each and resume from the last one.

        ``train_epoch()`` runs one pass and returns ``(sum of batch loss x rows, rows)``;
        ``val_loss()`` gives the validation loss (NaN without a validation split).
        ``epochs``: how many to run (default ``self.epochs``).
        """
        n_epochs = self.epochs if epochs is None else epochs
        from . import checkpoint as ckpt_mod

        state = None
        if ckpt_dir is not None:
            if resume:
                state = ckpt_mod.load_latest(ckpt_dir, run_key)
            else:
                ckpt_mod.clear(ckpt_dir)
        if state is None:
            history = [{"epoch": 0, "train_loss": float("nan"), "val_loss": val_loss()}]
            best = (history[0]["val_loss"], 0, copy.deepcopy(net.state_dict()))
            bad_epochs, start, done = 0, 1, False
        else:
            history, best, bad_epochs, start, done = ckpt_mod.restore(state, net, opt, gen, rng, device)

        def save(epoch: int, finished: bool) -> None:
            if ckpt_dir is not None:
                ckpt_mod.save(ckpt_dir, run_key, epoch=epoch, done=finished, net=net, opt=opt, gen=gen, rng=rng,
                              device=device, history=history, best=best, bad_epochs=bad_epochs)

        if start == 1 and not done:
            save(0, n_epochs == 0)
        for epoch in range(start, n_epochs + 1):
            if done:
                break
            net.train()
            total, count = train_epoch()
            vl = val_loss()
            if not math.isfinite(total) or (n_val and not math.isfinite(vl)):
                which = "training" if not math.isfinite(total) else "validation"
                raise TrainingDivergedError(
                    f"{type(self).__name__}: training diverged at epoch {epoch} (the {which} loss became NaN/inf); "
                    f"lower lr (now {self.lr:g}) or check the scale of the input vectors")
            history.append({"epoch": epoch, "train_loss": total / max(count, 1), "val_loss": vl})
            stop = False
            if n_val == 0:
                best = (vl, epoch, copy.deepcopy(net.state_dict()))
            elif vl < best[0] - 1e-7:
                best = (vl, epoch, copy.deepcopy(net.state_dict()))
                bad_epochs = 0
            else:
                bad_epochs += 1
                stop = bad_epochs >= self.patience
            save(epoch, stop or epoch == n_epochs)
            if stop:
                break
        return self._finish_fit(net, best, history, n, d_in, d_out)

    def _finish_fit(self, net, best: tuple, history: list[dict], n: int, d_in: int, d_out: int) -> _NeuralMapper:
        """Install the best epoch's weights and the fitted state (shared with the sharded trainer)."""
        net.load_state_dict(best[2])
        net.eval()
        self.net_ = net.to("cpu")
        self.history_ = history
        self.best_epoch_ = int(best[1])
        self.best_val_loss_ = float(best[0])
        self.n_pairs_ = n
        self.d_in_, self.d_out_ = d_in, d_out
        return self

    def _loss(self, pred, target):
        torch = _torch()
        F = torch.nn.functional
        if self.loss == "mse":
            return F.mse_loss(pred, target)
        if self.loss == "cosine":
            return (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()
        # InfoNCE with in-batch negatives, symmetric (both retrieval directions).
        p = F.normalize(pred, dim=1)
        t = F.normalize(target, dim=1)
        logits = p @ t.T / self.temperature
        labels = torch.arange(len(p), device=p.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))

    # -- inference -----------------------------------------------------------------
    def _transform(self, X: np.ndarray) -> np.ndarray:
        torch = _torch()
        out = np.empty((X.shape[0], self.d_out_), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, X.shape[0], 8192):
                out[s : s + 8192] = self.net_(torch.from_numpy(X[s : s + 8192])).numpy()
        if self.linear_ is not None:
            out += self.linear_.transform(X)
        return out

    def _fit_info(self) -> dict[str, Any]:
        info = {"n_pairs": self.n_pairs_, "best_epoch": self.best_epoch_, "best_val_loss": self.best_val_loss_,
                "history": self.history_}
        if self.linear_ is not None:
            info["linear"] = self.linear_.get_config()
        return info

    def _get_state(self) -> dict[str, np.ndarray]:
        state = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        if self.linear_ is not None:
            state.update({f"linear.{k}": v for k, v in self.linear_.state_dict().items()})
        return state

    def _state_shapes(self, d_in: int, d_out: int, config: dict[str, Any], where: str, field: str) -> dict:
        spec = {f"net.{k}": v for k, v in self._net_shapes(d_in, d_out, field).items()}
        if self.residual:
            info = config.get("fit_info")
            lin_cfg = info.get("linear") if isinstance(info, dict) else None
            if not isinstance(lin_cfg, dict):
                raise ArtefactError(f"{where}: {field}: residual mapper config lacks its linear part "
                                    f"({field}.fit_info.linear)")
            lf = f"{field}.fit_info.linear"
            if lin_cfg.get("class", "LinearMapper") != "LinearMapper":
                raise ArtefactError(f"{where}: {lf}.class must be 'LinearMapper', got {lin_cfg.get('class')!r}")
            lin = LinearMapper.config_tensors(lin_cfg, where, lf)
            if (lin_cfg["d_in"], lin_cfg["d_out"]) != (d_in, d_out):
                raise ArtefactError(f"{where}: {lf} is {lin_cfg['d_in']}->{lin_cfg['d_out']} but {field} is "
                                    f"{d_in}->{d_out}")
            spec.update({f"linear.{k}": v for k, v in lin.items()})
        return spec

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        torch = _torch()
        name = type(self).__name__
        net = self._build_net(self.d_in_, self.d_out_)
        expected = net.state_dict()
        got = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        if missing or extra:
            raise ArtefactError(f"{name}: weights do not match the configured network "
                                f"(missing {missing[:5]}, unexpected {extra[:5]})")
        for k, v in expected.items():
            expect_shape(got, k, tuple(v.shape), name)
        net.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in got.items()})
        net.eval()
        self.net_ = net
        info = config.get("fit_info", {})
        if self.residual:
            lin_cfg = info.get("linear")
            if not isinstance(lin_cfg, dict):
                raise ArtefactError(f"{name}: residual mapper config lacks its linear part")
            lin_tensors = {k[7:]: v for k, v in tensors.items() if k.startswith("linear.")}
            self.linear_ = LinearMapper.from_state(lin_cfg, lin_tensors)
        else:
            self.linear_ = None
        self.history_ = info.get("history", [])
        self.best_epoch_ = int(info.get("best_epoch", 0))
        self.best_val_loss_ = float(info.get("best_val_loss", "nan"))
        self.n_pairs_ = int(info.get("n_pairs", 0))


def is_neural(mapper: Any) -> TypeGuard[_NeuralMapper]:
    """Whether ``mapper`` is a torch-trained mapper (``MLPMapper``, ``AutoEncoderMapper``, ...): those train
    by minibatches, checkpoint and resume, and fit from shards by streaming rather than from statistics."""
    return isinstance(mapper, _NeuralMapper)


class MLPMapper(_NeuralMapper):
    """The paper's Fully Connected LangAlign: ``n_layers`` linear layers, ReLU and Dropout between.

    Default 6 layers of width ``hidden_dim``. ``residual=True`` (default) adds the
    cross-validated linear map as a skip path (see module docstring);
    ``residual=False`` is the paper's plain form.
    """

    kind = "mlp"

    def __init__(self, hidden_dim: int = 1024, n_layers: int = 6, dropout: float = 0.1, loss: str = "mse",
                 residual: bool = True, lr: float = 1e-3, weight_decay: float = 0.0, epochs: int = 100,
                 batch_size: int = 128, val_fraction: float = 0.1, patience: int = 10, temperature: float = 0.05,
                 seed: int = 0, device: str = "auto", linear_params: dict | None = None):
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.dropout = dropout
        self.loss = loss
        self.residual = residual
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.temperature = temperature
        self.seed = seed
        self.device = device
        self.linear_params = linear_params

    def _validate_params(self) -> None:
        check_int_param("hidden_dim", self.hidden_dim, 1, MAX_DIM)
        check_int_param("n_layers", self.n_layers, 1, MAX_LAYERS)
        super()._validate_params()

    def _dims(self, d_in: int, d_out: int) -> list[int]:
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")
        return [d_in] + [self.hidden_dim] * (self.n_layers - 1) + [d_out]

    def _build_net(self, d_in: int, d_out: int):
        return _mlp(self._dims(d_in, d_out), self.dropout)

    def _net_shapes(self, d_in: int, d_out: int, field: str) -> dict:
        fields = ", ".join(f"{field}.{k}" for k in ("d_in", "d_out", "params.hidden_dim", "params.n_layers"))
        return _mlp_shapes(self._dims(d_in, d_out), self.dropout, "", fields)


class AutoEncoderMapper(_NeuralMapper):
    """The paper's AutoEncoder LangAlign: a 3-layer encoder to a bottleneck, a 3-layer decoder.

    Encoder ``d_in -> hidden -> hidden -> bottleneck``, decoder
    ``bottleneck -> hidden -> hidden -> d_out``, ReLU and Dropout between layers.
    It is trained to map, not to reconstruct: the decoder outputs the target vector.
    """

    kind = "autoencoder"

    def __init__(self, hidden_dim: int = 512, bottleneck_dim: int = 256, dropout: float = 0.1, loss: str = "mse",
                 residual: bool = True, lr: float = 1e-3, weight_decay: float = 0.0, epochs: int = 100,
                 batch_size: int = 128, val_fraction: float = 0.1, patience: int = 10, temperature: float = 0.05,
                 seed: int = 0, device: str = "auto", linear_params: dict | None = None):
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.dropout = dropout
        self.loss = loss
        self.residual = residual
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.temperature = temperature
        self.seed = seed
        self.device = device
        self.linear_params = linear_params

    def _validate_params(self) -> None:
        check_int_param("hidden_dim", self.hidden_dim, 1, MAX_DIM)
        check_int_param("bottleneck_dim", self.bottleneck_dim, 1, MAX_DIM)
        super()._validate_params()

    def _net_shapes(self, d_in: int, d_out: int, field: str) -> dict:
        # Sequential(encoder, ReLU, Dropout, decoder): the halves are children 0 and 3.
        fields = ", ".join(f"{field}.{k}" for k in ("d_in", "d_out", "params.hidden_dim", "params.bottleneck_dim"))
        h, z = self.hidden_dim, self.bottleneck_dim
        return {**_mlp_shapes([d_in, h, h, z], self.dropout, "0.", fields),
                **_mlp_shapes([z, h, h, d_out], self.dropout, "3.", fields)}

    def _build_net(self, d_in: int, d_out: int):
        nn = _torch().nn
        h, z = self.hidden_dim, self.bottleneck_dim
        encoder = _mlp([d_in, h, h, z], self.dropout)
        decoder = _mlp([z, h, h, d_out], self.dropout)
        # ReLU + Dropout also sit between encoder and decoder: six layers in one chain.
        return nn.Sequential(encoder, nn.ReLU(), nn.Dropout(self.dropout), decoder)
