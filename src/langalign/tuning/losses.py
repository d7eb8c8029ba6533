"""The training objectives: batches and losses of task (softmax, contrastive) parallel and distil mode."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .environment import _default_prompt


class _Losses:
    """Batches and losses of each mode (a mixin of :class:`~langalign.tuning.EncoderTuner`)."""

    batch_size: int

    def _steps_per_epoch(self, loss_name: str, y_idx: np.ndarray | None, n: int) -> int:
        items = n
        if loss_name == "contrastive":  # one negative per example, one positive if its class has another
            assert y_idx is not None
            _, inv, counts = np.unique(y_idx, return_inverse=True, return_counts=True)
            items = n + int(np.sum(counts[inv] >= 2))
        return math.ceil(items / int(self.batch_size))

    def _batches(self, loss_name: str, y_idx: np.ndarray | None, rng: np.random.Generator, n: int) -> list[Any]:
        bs = int(self.batch_size)
        if loss_name != "contrastive":
            order = rng.permutation(n)
            return [order[s:s + bs] for s in range(0, n, bs)]
        # SetFit: each example with one random same-label and one random other-label partner.
        assert y_idx is not None
        by_class = {c: np.flatnonzero(y_idx == c) for c in np.unique(y_idx)}
        others = {c: np.flatnonzero(y_idx != c) for c in by_class}
        items: list[tuple[int, int, float]] = []
        for i in rng.permutation(n):
            same = by_class[y_idx[i]]
            if same.size >= 2:
                j = i
                while j == i:
                    j = int(same[rng.integers(same.size)])
                items.append((int(i), j, 1.0))
            other = others[y_idx[i]]
            items.append((int(i), int(other[rng.integers(other.size)]), 0.0))
        order = rng.permutation(len(items))
        items = [items[k] for k in order]
        return [items[s:s + bs] for s in range(0, len(items), bs)]

    def _embed(self, model: Any, texts: list[str], device: str) -> Any:
        prompt = _default_prompt(model)
        if prompt:  # trained as it is used: model.encode prepends the default prompt (e5's "query: ")
            texts = [prompt + t for t in texts]
        prep = getattr(model, "preprocess", None) or model.tokenize
        feats = prep(texts)
        feats = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in feats.items()}
        return model(feats)["sentence_embedding"]

    def _loss(self, model: Any, head: Any, batch: Any, data: dict[str, Any], loss_name: str, y_idx: Any,
              teacher: Any, device: str) -> Any:
        import torch
        import torch.nn.functional as F

        if loss_name == "contrastive":
            a = [data["texts"][i] for i, _, _ in batch]
            b = [data["texts"][j] for _, j, _ in batch]
            target = torch.tensor([t for _, _, t in batch], dtype=torch.float32, device=device)
            E = self._embed(model, a + b, device)
            sim = F.cosine_similarity(E[:len(a)], E[len(a):])
            return F.mse_loss(sim, target)
        if loss_name == "softmax":
            idx = batch.tolist()
            y = torch.as_tensor(y_idx[idx], device=device)
            if data["pairs"] is None:
                feats = self._embed(model, [data["texts"][i] for i in idx], device)
            else:
                E = self._embed(model, [data["texts"][i] for i in idx] + [data["pairs"][i] for i in idx], device)
                u, v = E[:len(idx)], E[len(idx):]
                feats = torch.cat([u, v, (u - v).abs()], dim=1)
            return F.cross_entropy(head(feats), y)
        # parallel: student(english) and student(translation) toward teacher(english)
        # distil: the same toward another model's (the teacher's) vectors; translations only when given
        idx = batch.tolist()
        T = torch.as_tensor(teacher["train"][idx], device=device)
        texts = [data["english"][i] for i in idx]
        if data.get("translations") is None:
            return F.mse_loss(self._embed(model, texts, device), T)
        E = self._embed(model, texts + [data["translations"][i] for i in idx], device)
        return F.mse_loss(E, torch.cat([T, T], dim=0))
