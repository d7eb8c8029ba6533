"""Cross-lingual search: an English vector index answering queries in other languages through an aligner."""
from .search_index import Hit, SearchIndex, add_documents, delete_documents, space_problem

__all__ = ["SearchIndex", "Hit", "space_problem", "add_documents", "delete_documents"]
