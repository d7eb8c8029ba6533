"""Embedding tuning, the LangAlign paper's optional first step: fine-tune a sentence-transformers
encoder before alignment and task training.

Two modes:

- ``mode="task"``: labelled English data (single texts or text pairs) shapes the embedding
  space for the task. ``loss="softmax"`` trains the encoder with a linear classifier on its
  sentence embedding (pairs: on ``[u, v, |u-v|]``, the SBERT NLI recipe; the classifier is
  thrown away afterwards); ``loss="contrastive"`` is SetFit's recipe: each epoch pairs every
  example with one random same-label and one random different-label example and pulls their
  cosine similarity toward 1 / 0 (``CosineSimilarityLoss``). The default (``"auto"``) is
  contrastive for single texts (it beat softmax on SIB-200 dev in ``bench/tuning.py``, at about
  three times the tuning time; see ``bench/results/tuning.md``) and softmax for pairs.
- ``mode="parallel"``: multilingual knowledge distillation (Reimers & Gurevych 2020):
  the student's embeddings of the English sentence and of its translation are both pulled
  toward the frozen teacher's (the base model's) embedding of the English sentence (MSE).
  Only useful for an encoder whose tokenizer reads the target language.
- ``mode="distil"``: the same distillation with *another* model as the teacher
  (``teacher="minilm"``): a multilingual student (e5-small) learns an English system's space
  from English text alone (translations optional), so its ko/ja/zh vectors are read by that
  system's heads and indexes as they are. ``start_map=True`` starts from a ridge map into the
  teacher's space as a last linear layer. The tuned folder records the teacher as its
  ``vector_space`` (see :mod:`langalign.tuning.distil`).

The package: ``base`` (constants, :class:`TuningError`), ``inputs`` (validation, hashes, dev
splits), ``environment`` (device, threads, the base model), ``checkpoints``, ``losses``,
``training`` (the epoch loop), ``distil`` (distil mode's teacher and start map), ``output``
(where a tuned encoder may be written), ``tuner`` (:class:`EncoderTuner`, :func:`tune_encoder`).

The training loop is our own (torch + the model's forward), so a run is reproducible and
resumable: every epoch seeds torch and numpy from ``(seed, epoch)``, and a checkpoint
(weights, AdamW moments, best weights, history; safetensors + JSON, never pickle) is written
after each epoch. An interrupted run resumed from its checkpoint ends with the same weights
as an uninterrupted one. Early stopping keeps the weights of the best epoch on a dev split.

The output folder is a plain sentence-transformers folder (``model.safetensors``) plus
``langalign_tuning.json`` (base model and its fingerprint, data hash, parameters, dev
scores). :func:`langalign.encoders.load_encoder` loads it under the name
``tuned:<base>:<fingerprint>``; its fingerprint differs from the base model's, so aligners
and classifiers fitted on the base refuse it (:class:`~langalign.errors.EncoderMismatchError`).

``use-multilingual`` cannot be tuned: it runs on a numpy-only implementation without gradients.
``e5-small`` can (task, parallel and distil mode): it is trained with its default ``query: `` prompt, as
it encodes, and the tuned folder keeps its prompts, so ``for_role("passage")`` works on it too.
"""
from .base import DEFAULT_TASK_LOSS, KIND, MODES, TASK_LOSSES, TuningError
from .environment import resolve_device
from .output import check_tuned_destination
from .tuner import EncoderTuner, tune_encoder

__all__ = ["EncoderTuner", "tune_encoder", "check_tuned_destination", "resolve_device", "TuningError",
           "KIND", "MODES", "TASK_LOSSES", "DEFAULT_TASK_LOSS"]
