"""Cross-lingual search: an English vector index answering queries in other languages through an aligner."""
from .search_index import Hit, SearchIndex, space_problem
from .updates import add_documents, delete_documents

__all__ = ["SearchIndex", "Hit", "space_problem", "add_documents", "delete_documents"]
