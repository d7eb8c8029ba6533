"""Exceptions users can catch. The CLI prints these as one line, no traceback."""


class LangAlignError(Exception):
    """Base class for errors langalign raises on purpose (bad input, bad files)."""


class ArtefactError(LangAlignError, ValueError):
    """A saved aligner/classifier folder is missing, corrupt, or incompatible."""


class EncoderNotAvailableError(LangAlignError, OSError):
    """A named encoder cannot be loaded here (not installed, not cached offline)."""


class DataError(LangAlignError, ValueError):
    """An input data file is unreadable or malformed; the message names file and line."""


class EncoderMismatchError(ArtefactError):
    """An artefact or embeddings are applied with an encoder other than the one they were made with.

    A kind of :class:`ArtefactError` (the artefact is incompatible with that encoder), so code that
    handles artefact problems also handles this one.
    """


class TrainingDivergedError(LangAlignError, ValueError):
    """Training a neural map produced a NaN/inf loss (too large a learning rate, or extreme inputs)."""
