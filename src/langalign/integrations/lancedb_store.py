"""A table of an embedded LanceDB database (see :mod:`langalign.integrations.stores`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._extras import require
from .collection import CollectionHit, StoreError, VectorCollection, TEXT_KEYS


# ---------------------------------------------------------------- LanceDB

_LANCE_KEY = "langalign"


class LanceDBCollection(VectorCollection):
    """A table of an embedded LanceDB database (``lancedb.connect(path)``).

    Searched exactly: cosine distance over every row (``bypass_vector_index``), whatever ANN index
    the table may have. ``vector_key`` names the vector column (default: ``"vector"``, else the only
    fixed-size-list column).
    """

    kind = "lancedb"
    extra = "lancedb"

    def __init__(self, path: str | Path, name: str, text_key: str | None = None, vector_key: str | None = None):
        super().__init__(path, name, text_key)
        self.vector_key = vector_key
        self._db: Any = None
        self._tbl: Any = None

    def _lance(self) -> Any:
        if self._db is None:
            lancedb = require("lancedb", self.extra, "LanceDB tables")
            self._db = lancedb.connect(str(self.path))
        return self._db

    def _table(self) -> Any:
        if self._tbl is None:
            self._tbl = self._lance().open_table(self.name)
        return self._tbl

    def list_collections(self) -> list[str]:
        if not self.path.is_dir():
            return []
        db = self._lance()
        names = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
        names = getattr(names, "tables", names)  # newer lancedb answers a response object
        return sorted(str(n) for n in names)

    def exists(self) -> bool:
        return self.path.is_dir() and self.name in self.list_collections()

    def _vector_field(self) -> Any:
        import pyarrow as pa

        schema = self._table().schema
        if self.vector_key:
            if self.vector_key not in schema.names:
                raise StoreError(f"{self.spec}: no column {self.vector_key!r} (columns: {', '.join(schema.names)})")
            return schema.field(self.vector_key)
        if "vector" in schema.names:
            return schema.field("vector")
        lists = [f for f in schema if pa.types.is_fixed_size_list(f.type)]
        if len(lists) != 1:
            raise StoreError(f"{self.spec}: cannot tell the vector column among {', '.join(schema.names)}; "
                             "name it (vector_key=...)")
        return lists[0]

    def count(self) -> int:
        return int(self._table().count_rows())

    def dimension(self) -> int | None:
        import pyarrow as pa

        f = self._vector_field()
        if pa.types.is_fixed_size_list(f.type):
            return int(f.type.list_size)
        rows = self._table().head(1).column(f.name).to_pylist()
        return len(rows[0]) if rows else None

    def read_stamp(self) -> dict[str, Any] | None:
        meta = self._vector_field().metadata or {}
        raw = meta.get(_LANCE_KEY.encode())
        if raw is None:
            return None
        try:
            stamp = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise StoreError(f"{self.spec}: the langalign stamp in the vector column's metadata is not JSON") from None
        return stamp if isinstance(stamp, dict) else None

    def _write_stamp(self, stamp: dict[str, Any]) -> None:
        f = self._vector_field()
        value = json.dumps(stamp, sort_keys=True)
        tbl = self._table()
        if hasattr(tbl, "update_field_metadata"):  # lancedb >= 0.33: merges, only our key is written
            tbl.update_field_metadata({"path": f.name, "metadata": {_LANCE_KEY: value}})
        else:
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            tbl.replace_field_metadata(f.name, {**meta, _LANCE_KEY: value})
        self._tbl = None

    def _create(self, dim: int, stamp: dict[str, Any]) -> None:
        import pyarrow as pa

        vec = pa.field(self.vector_key or "vector", pa.list_(pa.float32(), dim),
                       metadata={_LANCE_KEY: json.dumps(stamp, sort_keys=True)})
        schema = pa.schema([pa.field("id", pa.string()), pa.field(self.text_key or "text", pa.string()), vec])
        self._tbl = self._lance().create_table(self.name, schema=schema)

    def _existing_ids(self, ids: list[str]) -> list[str]:
        if "id" not in self._table().schema.names:
            return []
        found: list[str] = []
        for s in range(0, len(ids), 500):
            part = ids[s : s + 500]
            where = "id IN (" + ", ".join("'" + i.replace("'", "''") + "'" for i in part) + ")"
            found += [str(r) for r in self._table().search().where(where).select(["id"]).limit(len(part))
                      .to_arrow().column("id").to_pylist()]
        return found

    def _add(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        import pyarrow as pa

        tbl = self._table()
        d = vectors.shape[1]
        vec = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(vectors, np.float32).ravel()), d)
        tbl.add(pa.Table.from_arrays([pa.array(ids), pa.array(texts), vec], schema=tbl.schema))

    def _query(self, Q: np.ndarray, k: int) -> list[list[CollectionHit]]:
        tbl = self._table()
        vkey = self._vector_field().name
        names = tbl.schema.names
        text_col = self.text_key or next((t for t in TEXT_KEYS if t in names), None)
        cols = [c for c in ("id", text_col) if c and c in names] + ["_distance"]  # named: lance warns otherwise
        out = []
        for q in Q:
            res = (tbl.search(q, vector_column_name=vkey).distance_type("cosine").bypass_vector_index()
                   .select(cols).limit(k).to_arrow())
            recs = res.to_pylist()
            out.append([CollectionHit(str(r.get("id", i)), self._text_of(r), 1.0 - float(r["_distance"]))
                        for i, r in enumerate(recs)])
        return out

    def _sample(self, n: int) -> list[tuple[str | None, np.ndarray]]:
        vkey = self._vector_field().name
        rows = self._table().head(n).to_pylist()
        return [(self._text_of(r), np.asarray(r[vkey], np.float32)) for r in rows]
