"""Changing a saved index next to other writers: add and delete documents under the index's writer lock."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._validation import check_texts
from ..encoders import Encoder
from . import store
from .search_index import SearchIndex


def add_documents(folder: str | Path, texts: Sequence[str], ids: Sequence[str] | None = None,
                  encoder: Encoder | str | None = None, force: bool = False, batch_size: int = 256,
                  show_progress: bool | None = None, lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT,
                  ) -> tuple[int, int]:
    """Add documents to the saved index at ``folder``, safely next to other writers: ``(added, total)``.

    The texts are encoded first, without holding anything; then, holding the index's writer lock,
    the newest version is loaded, the documents are appended to it and it is saved. Two concurrent
    calls therefore both keep their documents, and an id already in the index (given twice, or by
    a retried call) is refused with nothing written. Without ``ids`` the documents get new ids.
    """
    folder = Path(folder)
    first = SearchIndex.load(folder, encoder=encoder, force=force)
    texts = check_texts(texts, "texts")
    if not texts:
        raise ValueError("texts is empty: no documents to add")
    ids = SearchIndex._check_ids(ids, len(texts))
    if ids is not None:  # a quick answer before the encoding; checked again under the lock
        taken = first._existing_ids(list(ids))
        if taken:
            raise ValueError(f"{len(taken)} document id(s) already in the index: {', '.join(map(repr, taken[:5]))}"
                             f"{' ...' if len(taken) > 5 else ''}; nothing was added (ids are unique: give new "
                             "ids, or leave ids out to get new ones)")
    enc = first._encoder()
    V = enc.encode(texts, batch_size=batch_size, show_progress=show_progress)
    del first
    with store.writer_lock(folder, lock_timeout):
        latest = SearchIndex.load(folder, encoder=enc, force=force)
        latest.add_embeddings(V, texts, ids)
        latest.save(folder, lock_timeout=lock_timeout)
    return len(texts), len(latest)


def delete_documents(folder: str | Path, ids: Sequence[str],
                     lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT) -> tuple[int, int]:
    """Remove documents by id from the saved index at ``folder`` (under its writer lock): ``(removed, left)``."""
    folder = Path(folder)
    with store.writer_lock(folder, lock_timeout):
        idx = SearchIndex.load(folder)
        removed = idx.delete(ids)
        if not len(idx):
            raise ValueError(f"removing these {removed} documents would leave the index empty; build a new one "
                             "instead")
        idx.save(folder, lock_timeout=lock_timeout)
    return removed, len(idx)
