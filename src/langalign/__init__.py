"""langalign: cross-lingual embedding alignment (LangAlign, Kim et al. 2025)."""
from ._version import __version__
from .errors import ArtefactError, DataError, EncoderNotAvailableError, LangAlignError

__all__ = ["__version__", "LangAlignError", "ArtefactError", "DataError", "EncoderNotAvailableError"]
