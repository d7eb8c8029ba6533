"""A cross-lingual search index: English documents, queries in any language.

Documents are encoded once by the index's (English) encoder. A query in Korean,
Japanese or Chinese goes through a saved aligner's Rev-LangAlign map
(``aligner.to_source``: target encoder, then target -> source space) and lands
in the index's space, so the existing English index answers it without
re-embedding the corpus::

    idx = SearchIndex("minilm").build(english_docs, ids=doc_ids)
    idx.save("indexes/docs")
    idx = SearchIndex.load("indexes/docs")
    bridge = LangAlign.load("aligners/bridge")       # minilm <- use-multilingual
    hits = idx.search(["서울의 날씨는 어떤가요?"], top_k=5, aligner=bridge)

An encoder with query and passage prompts (``e5-small``) encodes the documents with its passage
role (``e5-small:passage``, prefix ``passage: ``) and the queries with its query role (``query: ``):
the index's space is named by the query encoder (what aligners map into), and the saved index also
records the documents' encoder (``document_encoder`` in its config), checked when documents are added.

Scores are cosines (vectors are stored unit-normalised), searched exactly: FAISS
``IndexFlatIP`` when ``faiss`` is importable, the bounded-memory numpy scan
otherwise (same answers up to float32 rounding). ``csls=True`` re-ranks by CSLS
(Conneau et al., 2018): 2 cos(x, y) - r(x) - r(y), where r(y), a document's
hubness, is its mean cosine to its k nearest *reference queries*: the ones given
to :meth:`SearchIndex.calibrate_csls` (stored with the index), or else the
queries of the same call (which then must be at least k).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Sequence

import numpy as np

from .._io import atomic_dir
from .._validation import check_matrix, check_texts
from .._version import ARTEFACT_FORMAT_VERSION, __version__
from ..encoder_identity import check_encoder_identity, space_problem
from ..encoders import Encoder, load_encoder, looks_like_path
from ..errors import ArtefactError, EncoderMismatchError
from . import store

__all__ = ["SearchIndex", "Hit", "space_problem"]

DEFAULT_NEIGHBOURHOOD_K = 10
BACKENDS = ("auto", "faiss", "numpy")
_NUMPY_CHUNK = 2048
# A reader retries when the version it is reading is replaced meanwhile; each retry means a writer
# finished a save, so this bounds only how many saves can overtake one load.
_LOAD_ATTEMPTS = 20


class Hit(NamedTuple):
    """One search result: the document's ``id`` and ``text``, its ``score`` and ``row`` in the index."""

    id: str
    text: str
    score: float
    row: int


class _Segment(NamedTuple):
    start: int
    stop: int
    source: Path | None  # the file it was loaded from (unchanged), if any
    sha: str | None


def _normalize(X: np.ndarray) -> np.ndarray:
    """Unit rows. Each row is first divided by its largest absolute value, so the norm of a vector of
    huge (3e38) or tiny (1e-30) entries neither overflows nor underflows in float32."""
    X = np.asarray(X, dtype=np.float32)
    scale = np.max(np.abs(X), axis=1, keepdims=True) if X.size else np.zeros((X.shape[0], 1), np.float32)
    out = np.zeros_like(X, dtype=np.float32)
    np.divide(X, scale, out=out, where=scale > 0)  # a zero row stays zero: cosine 0 to everything
    norms = np.linalg.norm(out, axis=1, keepdims=True)  # in [1, sqrt(dim)] for a non-zero row
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def _faiss_wanted(backend: str) -> bool:
    from ..scale.retrieval_faiss import faiss_available

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "faiss" and not faiss_available():
        raise ImportError("backend='faiss' needs the faiss package: pip install 'langalign[faiss]'")
    return backend == "faiss" or (backend == "auto" and faiss_available())


def _flat(base: np.ndarray) -> Any:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    return index


def _check_k(k: Any, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


class SearchIndex:
    """Exact cosine search over documents encoded by one encoder, answerable through aligners.

    Parameters
    ----------
    encoder:
        the index's encoder (an :class:`~langalign.encoders.Encoder` or a name for
        :func:`~langalign.encoders.load_encoder`), loaded on first use. Its identity
        (name, dimension, fingerprint) is recorded in the saved index. An encoder with roles
        encodes queries with ``for_role("query")`` and documents with ``for_role("passage")``.
    backend:
        ``"auto"`` (FAISS if installed, else numpy), ``"faiss"`` or ``"numpy"``.
    neighbourhood_k:
        the k of CSLS's hubness terms (10, as in the CSLS paper).
    """

    def __init__(self, encoder: Encoder | str = "minilm", backend: str = "auto",
                 neighbourhood_k: int = DEFAULT_NEIGHBOURHOOD_K):
        if not isinstance(encoder, (Encoder, str)):
            raise TypeError(f"encoder must be an Encoder or an encoder name, got {type(encoder).__name__}")
        self.encoder = encoder
        self.backend = backend
        self.neighbourhood_k = _check_k(neighbourhood_k, "neighbourhood_k")
        self.force = False
        self.encoder_identity_: dict | None = None
        # The documents' encoder when it is not the query encoder (an encoder with roles); None otherwise.
        self.document_identity_: dict | None = None
        self._doc_role = "passage"  # an index saved before roles existed encoded its documents as queries
        self.csls_info_: dict | None = None
        self._verified = False
        self._from_artefact = False
        self._origin: tuple[str, str] | None = None  # (folder, config revision) this state was loaded/saved as
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._vectors = np.empty((0, 0), dtype=np.float32)
        self._segments: list[_Segment] = []
        self._db = store.new_docs_db()
        self._db_readonly = False
        self._faiss: Any = None
        self._csls_ref: np.ndarray | None = None
        self._csls_pen: np.ndarray | None = None
        self._csls_aug: Any = None
        self._next_auto_id = 0  # default ids are str(n) for n counting up from here, never reused
        self.csls_info_ = None

    # -- encoder ---------------------------------------------------------------------
    @property
    def encoder_name(self) -> str:
        return self.encoder.name if isinstance(self.encoder, Encoder) else self.encoder

    @property
    def document_encoder_name(self) -> str:
        """The documents' encoder (``e5-small:passage``); the index's encoder when it has no roles."""
        if self.document_identity_ is not None:
            return str(self.document_identity_.get("name"))
        if isinstance(self.encoder, Encoder):
            return self.encoder.for_role(self._doc_role).name
        return self.encoder

    def _encoder(self) -> Encoder:
        """The query encoder (the index's space), loaded and checked on first use."""
        if not isinstance(self.encoder, Encoder):
            if self._from_artefact and looks_like_path(self.encoder):
                raise ArtefactError(f"the index records its encoder as the local path {self.encoder!r}; it is not "
                                    "loaded from a path written in a config. Pass the encoder explicitly "
                                    "(SearchIndex.load(..., encoder=...); CLI: --encoder PATH)")
            self.encoder = load_encoder(self.encoder, allow_download=not self._from_artefact)
        self.encoder = self.encoder.for_role("query")
        if not self._verified:
            if self.encoder_identity_ is not None:
                check_encoder_identity(self.encoder_identity_, self.encoder, "this search index", force=self.force)
            self._verified = True
        return self.encoder

    def _document_encoder(self) -> Encoder:
        """The encoder of the documents: the passage role of the index's encoder (itself when it has no roles)."""
        enc = self._encoder().for_role(self._doc_role)
        if self.document_identity_ is not None:
            check_encoder_identity(self.document_identity_, enc, "this search index's documents", force=self.force)
        return enc

    def _record_identities(self) -> None:
        if self.encoder_identity_ is None:
            enc = self._encoder()
            self.encoder_identity_ = _identity(enc)
            doc = enc.for_role(self._doc_role)
            self.document_identity_ = _identity(doc) if doc is not enc else None

    def use_encoder(self, encoder: Encoder, force: bool = False) -> SearchIndex:
        """Attach an already loaded encoder, checked now against the recorded identity."""
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder must be an Encoder, got {type(encoder).__name__}")
        encoder = encoder.for_role("query")
        if self.encoder_identity_ is not None:
            check_encoder_identity(self.encoder_identity_, encoder, "this search index", force=force)
        self.encoder, self.force, self._verified = encoder, bool(force), True
        return self

    @property
    def dim(self) -> int | None:
        if self.encoder_identity_ is not None:
            return int(self.encoder_identity_["dim"])
        return self.encoder.dim if isinstance(self.encoder, Encoder) else None

    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    # -- adding documents ------------------------------------------------------------
    def build(self, texts: Sequence[str], ids: Sequence[str] | None = None, batch_size: int = 256,
              show_progress: bool | None = None) -> SearchIndex:
        """Encode ``texts`` and make them the index's documents (replacing any), returns self."""
        texts = check_texts(texts, "texts")
        if not texts:
            raise ValueError("texts is empty: no documents to index")
        self._check_ids(ids, len(texts))
        V = self._document_encoder().encode(texts, batch_size=batch_size, show_progress=show_progress)
        return self.build_embeddings(V, texts, ids)

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None, batch_size: int = 256,
            show_progress: bool | None = None) -> SearchIndex:
        """Encode ``texts`` and append them; existing rows are not re-encoded.

        Without ``ids`` each new document gets a new id: its row number (``"0"``, ``"1"``, ...), or after
        a :meth:`delete` the next number never used, skipping ids in use; so adding the same texts twice
        keeps both copies. An id in ``ids`` that the index holds already is refused (``ValueError``, nothing added).
        """
        texts = check_texts(texts, "texts")
        if not texts:
            raise ValueError("texts is empty: no documents to add")
        self._check_ids(ids, len(texts))
        V = self._document_encoder().encode(texts, batch_size=batch_size, show_progress=show_progress)
        return self.add_embeddings(V, texts, ids)

    def build_embeddings(self, vectors: Any, texts: Sequence[str], ids: Sequence[str] | None = None) -> SearchIndex:
        """As :meth:`build`, from vectors already computed with the documents' encoder (for an encoder with
        roles its passage role, e.g. ``load_encoder("e5-small:passage")``)."""
        texts = check_texts(texts, "texts")
        self._record_identities()
        V = check_matrix(vectors, "vectors", dim=self.dim, allow_empty=False)  # checked before anything is dropped
        if V.shape[0] != len(texts):
            raise ValueError(f"vectors has {V.shape[0]} rows but there are {len(texts)} texts")
        self._check_ids(ids, len(texts))
        with self._lock:
            self._reset()
        return self.add_embeddings(V, texts, ids)

    def add_embeddings(self, vectors: Any, texts: Sequence[str], ids: Sequence[str] | None = None) -> SearchIndex:
        """As :meth:`add`, from vectors already computed with the documents' encoder."""
        texts = check_texts(texts, "texts")
        if not texts:
            raise ValueError("texts is empty: no documents to add")
        self._record_identities()
        V = check_matrix(vectors, "vectors", dim=self.dim, allow_empty=False)
        if V.shape[0] != len(texts):
            raise ValueError(f"vectors has {V.shape[0]} rows but there are {len(texts)} texts")
        ids = self._check_ids(ids, len(texts))
        Vn = _normalize(V)
        with self._lock:
            start = len(self)
            auto = ids is None
            new_ids = list(ids) if ids is not None else self._auto_ids(len(texts))
            if self._db_readonly:
                self._db, self._db_readonly = store.db_to_memory(self._db), False
            try:
                with self._db:  # one transaction: all rows or none
                    self._db.executemany("INSERT INTO docs(row, id, text) VALUES (?, ?, ?)",
                                         zip(range(start, start + len(texts)), new_ids, texts, strict=True))
            except sqlite3.IntegrityError:
                taken = self._existing_ids(new_ids)
                raise ValueError(f"{len(taken)} document id(s) already in the index: "
                                 f"{', '.join(map(repr, taken[:5]))}{' ...' if len(taken) > 5 else ''}; nothing was "
                                 "added (ids are unique: give new ids, or leave ids out to get new ones)") from None
            self._vectors = Vn if start == 0 else np.concatenate([self._vectors, Vn])
            # ids given or not, default ids count on from the row count (as they always did) and never go back
            self._next_auto_id = max(self._next_auto_id, len(self), int(new_ids[-1]) + 1 if auto else 0)
            self._segments.append(_Segment(start, start + len(texts), None, None))
            self._faiss = None  # rebuilt on the next search (never mutated under a running search)
            self._csls_aug = None
            if self._csls_ref is not None and self._csls_pen is not None:
                self._csls_pen = np.concatenate([self._csls_pen, self._hubness(Vn, self._csls_ref)])
        return self

    @staticmethod
    def _check_ids(ids: Sequence[str] | None, n: int) -> list[str] | None:
        if ids is None:
            return None
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list of strings, one per text")
        ids = list(ids)
        if len(ids) != n:
            raise ValueError(f"there are {n} texts but {len(ids)} ids")
        for i, d in enumerate(ids):
            if not isinstance(d, str) or not d:
                raise TypeError(f"ids[{i}] is {d!r}; ids must be non-empty strings")
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = ""
            for d in ids:
                if d in seen:
                    dup = d
                    break
                seen.add(d)
            raise ValueError(f"id {dup!r} appears more than once among the new documents")
        return ids

    def _auto_ids(self, n: int) -> list[str]:
        """``n`` new default ids: numbers counting up from the next unused one, skipping ids in use."""
        out: list[str] = []
        k = max(self._next_auto_id, len(self))
        while len(out) < n:
            want = [str(k + i) for i in range(n - len(out))]
            taken = set(self._existing_ids(want))
            out += [d for d in want if d not in taken]
            k += len(want)
        return out

    def delete(self, ids: Sequence[str]) -> int:
        """Remove the documents with these ids; returns how many were removed.

        Every id must be in the index (else ``ValueError`` naming the missing ones, nothing removed).
        Rows after a removed one move up; unchanged segments stay as they are on the next save.
        """
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list of document ids")
        ids = list(dict.fromkeys(ids))
        for i, d in enumerate(ids):
            if not isinstance(d, str) or not d:
                raise TypeError(f"ids[{i}] is {d!r}; ids are non-empty strings")
        if not ids:
            return 0
        with self._lock:
            rows: list[int] = []
            for s in range(0, len(ids), 500):
                part = ids[s : s + 500]
                q = f"SELECT row, id FROM docs WHERE id IN ({','.join('?' * len(part))})"
                rows += [int(r) for r, _ in self._db.execute(q, part)]
            if len(rows) != len(ids):
                found = set(self._existing_ids(ids))
                missing = [d for d in ids if d not in found]
                raise ValueError(f"{len(missing)} id(s) not in the index: {', '.join(map(repr, missing[:5]))}"
                               f"{' ...' if len(missing) > 5 else ''}; nothing was removed")
            gone = np.zeros(len(self), dtype=bool)
            gone[rows] = True
            keep = ~gone
            segments: list[_Segment] = []
            new_start = 0
            for seg in self._segments:
                kept = int(keep[seg.start : seg.stop].sum())
                if kept == 0:
                    continue
                unchanged = kept == seg.stop - seg.start
                segments.append(_Segment(new_start, new_start + kept, seg.source if unchanged else None,
                                         seg.sha if unchanged else None))
                new_start += kept
            db = store.new_docs_db()
            removed = set(ids)
            with db:
                cur = self._db.execute("SELECT id, text FROM docs ORDER BY row")
                new_row = 0
                while batch := cur.fetchmany(2000):
                    keep_batch = [(i, t) for i, t in batch if i not in removed]
                    db.executemany("INSERT INTO docs(row, id, text) VALUES (?, ?, ?)",
                                   ((new_row + k, i, t) for k, (i, t) in enumerate(keep_batch)))
                    new_row += len(keep_batch)
            self._db, self._db_readonly = db, False
            self._vectors = np.ascontiguousarray(self._vectors[keep])
            self._segments = segments
            self._faiss = None
            self._csls_aug = None
            if self._csls_pen is not None:
                self._csls_pen = self._csls_pen[keep]
        return len(rows)

    def _existing_ids(self, ids: list[str]) -> list[str]:
        found = []
        for s in range(0, len(ids), 500):
            part = ids[s : s + 500]
            q = f"SELECT id FROM docs WHERE id IN ({','.join('?' * len(part))})"
            found += [r[0] for r in self._db.execute(q, part)]
        return found

    # -- documents -------------------------------------------------------------------
    def documents(self, rows: Sequence[int]) -> list[tuple[str, str]]:
        """``(id, text)`` of the given rows."""
        rows = [int(r) for r in rows]
        out: dict[int, tuple[str, str]] = {}
        with self._lock:
            for s in range(0, len(rows), 500):
                part = rows[s : s + 500]
                q = f"SELECT row, id, text FROM docs WHERE row IN ({','.join('?' * len(part))})"
                for r, i, t in self._db.execute(q, part):
                    out[r] = (i, t)
        missing = [r for r in rows if r not in out]
        if missing:
            raise IndexError(f"rows {missing[:5]} are not in the index ({len(self)} documents)")
        return [out[r] for r in rows]

    # -- queries ---------------------------------------------------------------------
    def check_aligner(self, aligner: Any) -> None:
        """An aligner can bridge queries into this index only if its source side is the index's encoder."""
        from ..aligner import LangAlign

        if not isinstance(aligner, LangAlign):
            raise TypeError(f"aligner must be a fitted LangAlign, got {type(aligner).__name__}")
        if aligner.reverse_ is None:
            raise ValueError("the aligner has no target -> source map (it was fitted with reverse=False)")
        problem = space_problem(self.encoder_identity_, aligner.encoder_identity("source"))
        if problem:
            raise EncoderMismatchError(
                f"the aligner maps queries into the space of {aligner.source_name!r}, but this index holds "
                f"{self.encoder_name!r} vectors: {problem}. Use an aligner whose source encoder is the index's")

    def check_query_encoder(self, encoder: Any) -> None:
        """A query encoder may answer this index if its vectors live in the index's space: the index's own
        encoder, or one distilled into it (``langalign tune --mode distil --teacher <the index's encoder>``)."""
        from ..encoder_identity import vector_space

        problem = space_problem(self.encoder_identity_, vector_space(encoder))
        if problem:
            raise EncoderMismatchError(
                f"the query encoder {getattr(encoder, 'name', encoder)!r} gives vectors that do not belong in this "
                f"index of {self.encoder_name!r} vectors: {problem}. Use the index's encoder, one distilled into "
                "its space, or an aligner")

    def query_vectors(self, queries: Any, aligner: Any = None, encoder: Any = None) -> np.ndarray:
        """Queries (texts, or vectors) as vectors in the index's space; through ``aligner.to_source`` if given,
        or encoded by ``encoder`` (one whose vectors live in the index's space, e.g. a distilled bridge)."""
        if aligner is not None and encoder is not None:
            raise ValueError("give an aligner or a query encoder, not both")
        if encoder is not None:
            self.check_query_encoder(encoder)
            return encoder.encode(check_texts(queries, "queries"))
        if aligner is not None:
            self.check_aligner(aligner)
            return aligner.to_source(queries)
        if isinstance(queries, np.ndarray) and queries.dtype.kind in "fiu":
            return check_matrix(queries, "query vectors", dim=self.dim)
        return self._encoder().encode(check_texts(queries, "queries"))

    def search(self, queries: Any, top_k: int = 10, aligner: Any = None, csls: bool = False,
               encoder: Any = None) -> list[list[Hit]]:
        """The ``top_k`` best documents for each query, best first.

        ``queries`` are texts (or vectors) in the index's language/space, or, with
        ``aligner``, in the aligner's target language/space (mapped by Rev-LangAlign), or,
        with ``encoder``, texts that encoder reads (its vectors must live in the index's
        space: a distilled bridge, see docs/how-to/distilled-bridge.md).
        """
        V = self.query_vectors(queries, aligner, encoder)
        scores, rows = self.search_vectors(V, top_k, csls=csls)
        flat = sorted({int(r) for r in rows.ravel()})
        docs = dict(zip(flat, self.documents(flat), strict=True))
        return [[Hit(docs[int(r)][0], docs[int(r)][1], float(s), int(r)) for s, r in zip(srow, rrow, strict=True)]
                for srow, rrow in zip(scores, rows, strict=True)]

    def search_vectors(self, Q: Any, top_k: int = 10, csls: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)``, each ``(n_queries, k)``, for query vectors already in the index's space."""
        top_k = _check_k(top_k, "top_k")
        Q = check_matrix(Q, "query vectors", dim=self.dim, allow_empty=False)
        with self._lock:  # a consistent snapshot; the search itself runs unlocked
            C, n = self._vectors, len(self)
            if n == 0:
                raise ValueError("the index is empty; add documents first")
            use_faiss = _faiss_wanted(self.backend)
            if use_faiss and self._faiss is None:
                self._faiss = _flat(C)
            flat = self._faiss if use_faiss else None
            pen = aug = None
            if csls:
                pen = self._stored_penalty()
                aug = self._csls_aug if pen is not None else None
        Qn = _normalize(Q)
        k = min(top_k, n)
        if not csls:
            return self._ip(Qn, C, flat, k)
        kk = self.neighbourhood_k
        if pen is None:  # the queries of this call are the reference set
            if Qn.shape[0] < kk:
                raise ValueError(f"CSLS needs reference queries to measure each document's hubness: search with at "
                                 f"least {kk} queries at once, or call calibrate_csls(sample_queries) first")
            pen = self._hubness(C, Qn, use_faiss)
        r_q = self._ip(Qn, C, flat, min(kk, n))[0].mean(axis=1, dtype=np.float64).astype(np.float32)
        if use_faiss:
            if aug is None:
                aug = _flat(np.hstack([C, pen[:, None]]))
                with self._lock:
                    if self._csls_pen is pen:
                        self._csls_aug = aug
            # [2x, -1] . [y, r(y)] = 2 cos(x, y) - r(y); r(x) is a constant per query
            D, I = aug.search(np.hstack([2.0 * Qn, -np.ones((Qn.shape[0], 1), np.float32)]), k)
            return (D - r_q[:, None]).astype(np.float32), I.astype(np.int64)
        from ..evaluation.retrieval import topk_scan

        top = topk_scan(Qn, C, k, lambda cos, qs, cs: 2.0 * cos - r_q[qs, None] - pen[None, cs],
                         _NUMPY_CHUNK, False, "search (csls)")
        return top.scores, top.indices

    @staticmethod
    def _ip(Qn: np.ndarray, C: np.ndarray, flat: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        if flat is not None:
            D, I = flat.search(np.ascontiguousarray(Qn), k)
            return D.astype(np.float32), I.astype(np.int64)
        from ..evaluation.retrieval import topk_scan

        top = topk_scan(Qn, C, k, lambda cos, qs, cs: cos, _NUMPY_CHUNK, False, "search")
        return top.scores, top.indices

    def _hubness(self, docs: np.ndarray, ref: np.ndarray, use_faiss: bool | None = None) -> np.ndarray:
        """Mean cosine of each (unit) document row to its k nearest (unit) reference queries."""
        use_faiss = _faiss_wanted(self.backend) if use_faiss is None else use_faiss
        kk = min(self.neighbourhood_k, ref.shape[0])
        top = self._ip(docs, ref, _flat(ref) if use_faiss else None, kk)[0]
        return top.mean(axis=1, dtype=np.float64).astype(np.float32)

    def _stored_penalty(self) -> np.ndarray | None:
        if self._csls_ref is None:
            return None
        if self._csls_pen is None:
            self._csls_pen = self._hubness(self._vectors, self._csls_ref)
        return self._csls_pen

    def calibrate_csls(self, queries: Any, aligner: Any = None) -> SearchIndex:
        """Store reference queries (a sample of real traffic) for ``search(..., csls=True)``.

        They fix each document's hubness term, so CSLS results no longer depend on which
        queries share a call. Saved with the index; documents added later get theirs too.
        """
        R = _normalize(check_matrix(self.query_vectors(queries, aligner), "reference queries", dim=self.dim,
                                    allow_empty=False))
        if R.shape[0] < self.neighbourhood_k:
            raise ValueError(f"give at least neighbourhood_k={self.neighbourhood_k} reference queries, "
                             f"got {R.shape[0]}")
        with self._lock:
            self._csls_ref, self._csls_pen, self._csls_aug = R, None, None
            self.csls_info_ = {"queries": int(R.shape[0]), "neighbourhood_k": self.neighbourhood_k,
                               "aligner_target": getattr(aligner, "target_name", None)}
        return self

    # -- saving ----------------------------------------------------------------------
    def save(self, folder: str | Path, lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT) -> Path:
        """Write the index folder atomically; unchanged segments are hard-linked, not rewritten.

        ``folder`` may be new, empty or a search index (replaced). Writers of one folder take turns
        (an exclusive lock, waited for up to ``lock_timeout`` seconds). If this index was loaded
        from ``folder`` (or last saved there) and another writer has changed the folder since, the
        save is refused with :class:`ArtefactError` instead of dropping their documents: load it
        again and repeat the change (:func:`add_documents` does that by itself).
        """
        folder = Path(folder)
        store.check_index_destination(folder)
        with self._lock:
            if not len(self):
                raise ValueError("the index is empty; add documents before saving")
            if folder.is_dir() and store.is_index_folder(folder):
                with store.writer_lock(folder, lock_timeout):
                    self._check_not_changed(folder)
                    self._write(folder)
            else:
                self._write(folder)
        return folder

    def _check_not_changed(self, folder: Path) -> None:
        if self._origin is None or self._origin[0] != os.path.realpath(folder):
            return  # a new index for this folder: it replaces what is there (as `index build` does)
        with store.Snapshot(folder) as snap:
            try:
                _, revision = store.read_config(snap)
            except ArtefactError:
                return  # a damaged version is replaced by a good one
        if revision != self._origin[1]:
            raise ArtefactError(f"the index at {folder} was changed by another writer since this SearchIndex was "
                                "loaded; saving would drop their documents. Load it again and repeat the change "
                                "(langalign.index.add_documents and `langalign index add` do this by themselves)")

    def _write(self, folder: Path) -> None:
        segs: list[dict[str, Any]] = []
        new_segments: list[_Segment] = []
        taken: set[str] = set()

        def check(p: Path) -> None:
            store.check_index_destination(p)

        with atomic_dir(folder, check=check) as tmp:
            for seg in self._segments:
                arr = self._vectors[seg.start : seg.stop]
                name, sha = store.place_segment(tmp, arr, seg.source, seg.sha, taken)
                taken.add(name)
                segs.append({"file": name, "rows": seg.stop - seg.start, "sha256": sha})
                new_segments.append(_Segment(seg.start, seg.stop, folder / name, sha))
            docs_sha = store.write_db(self._db, tmp / store.DOCS_NAME)
            config: dict[str, Any] = {
                "format": "langalign", "format_version": ARTEFACT_FORMAT_VERSION, "kind": store.KIND,
                "langalign_version": __version__, "encoder": self.encoder_identity_,
                **({"document_encoder": self.document_identity_} if self.document_identity_ else {}),
                "count": len(self), "metric": "cosine", "neighbourhood_k": self.neighbourhood_k, "segments": segs,
                "docs_sha256": docs_sha, "next_auto_id": self._next_auto_id,
            }
            if self._csls_ref is not None:
                config["csls"] = {**(self.csls_info_ or {}),
                                  "sha256": store.write_tensor_file(tmp, store.CSLS_NAME, self._csls_ref, "queries")}
            data = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
            with open(tmp / store.CONFIG_NAME, "xb") as f:
                f.write(data)
        self._segments = new_segments
        self._origin = (os.path.realpath(folder), store.config_revision(data))

    @classmethod
    def load(cls, folder: str | Path, encoder: Encoder | str | None = None, force: bool = False,
             backend: str = "auto") -> SearchIndex:
        """Open a saved index; every damaged or missing file is an :class:`ArtefactError` naming it.

        The encoder is the recorded one (loaded on first text query), or ``encoder``,
        checked against the recorded name, dimension and fingerprint. A version being
        replaced by a writer while it is read is read again (the new one), never reported
        as damaged.
        """
        folder = Path(folder)
        if isinstance(encoder, str):  # named by the caller (a path is fine here): load it and check it now
            encoder = load_encoder(encoder)
        for attempt in range(_LOAD_ATTEMPTS):
            snap = store.Snapshot(folder)
            try:
                return cls._load(snap, encoder, force, backend)
            except ArtefactError:
                if attempt + 1 < _LOAD_ATTEMPTS and snap.replaced():
                    continue  # a writer swapped in a new version while we read this one: read that one
                raise
            finally:
                snap.close()
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load(cls, snap: store.Snapshot, encoder: Encoder | None, force: bool, backend: str) -> SearchIndex:
        folder = snap.folder
        cfg, revision = store.read_config(snap)
        ident = cfg["encoder"]
        nk = cfg.get("neighbourhood_k", DEFAULT_NEIGHBOURHOOD_K)
        obj = cls(encoder if encoder is not None else ident["name"], backend=backend,
                  neighbourhood_k=nk if isinstance(nk, int) and not isinstance(nk, bool) and nk > 0 else 10)
        obj.encoder_identity_ = dict(ident)
        doc = cfg.get("document_encoder")
        if isinstance(doc, dict):
            obj.document_identity_ = dict(doc)
        else:  # saved without roles: its documents were encoded like its queries
            obj._doc_role = "query"
        obj.force = bool(force)
        obj._from_artefact = True
        dim, parts, start = int(ident["dim"]), [], 0
        for s in cfg["segments"]:
            parts.append(store.read_matrix(snap, s["file"], s["sha256"], "vectors", dim, s["rows"]))
            obj._segments.append(_Segment(start, start + s["rows"], folder / s["file"], s["sha256"]))
            start += s["rows"]
        obj._vectors = (np.concatenate(parts) if len(parts) > 1 else parts[0] if parts
                        else np.empty((0, dim), np.float32))
        del parts
        obj._db = store.open_docs_db(snap, cfg["docs_sha256"], cfg["count"])
        obj._db_readonly = True
        obj._next_auto_id = int(cfg.get("next_auto_id", cfg["count"]))
        csls = cfg.get("csls")
        if isinstance(csls, dict):
            obj._csls_ref = store.read_matrix(snap, store.CSLS_NAME, csls.get("sha256"), "queries", dim, None)
            obj.csls_info_ = {k: v for k, v in csls.items() if k != "sha256"}
        obj._origin = (os.path.realpath(folder), revision)
        if isinstance(encoder, Encoder):
            obj.use_encoder(encoder, force=force)
        return obj

    def info(self) -> dict[str, Any]:
        return {"documents": len(self), "encoder": self.encoder_name, "document_encoder": self.document_encoder_name,
                "dim": self.dim, "fingerprint": (self.encoder_identity_ or {}).get("fingerprint"),
                "segments": len(self._segments),
                "csls_reference_queries": (self.csls_info_ or {}).get("queries"),
                "backend": "faiss" if _faiss_wanted(self.backend) else "numpy"}

    def __repr__(self) -> str:
        return f"SearchIndex(encoder={self.encoder_name!r}, documents={len(self)})"


def _identity(encoder: Encoder) -> dict:
    # An encoder that cannot encode the probe sentences records name and dim only (it warns).
    return encoder.identity()

