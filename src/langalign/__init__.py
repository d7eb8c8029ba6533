"""langalign: cross-lingual embedding alignment (LangAlign, Kim et al. 2025).

    import langalign as la
    align = la.LangAlign("minilm", "use-multilingual").fit(english, korean)
    Z = align.to_target(english)   # forward: English -> target space
    E = align.to_source(korean)    # reverse: target -> English space
"""
from ._version import __version__
from .aligner import LangAlign
from .averaged_encoder import AveragedEncoder
from .encoders import Encoder, FunctionEncoder, available_encoders, load_encoder
from .errors import ArtefactError, DataError, EncoderMismatchError, EncoderNotAvailableError, LangAlignError
from .mappers import (AutoEncoderMapper, CenteringMapper, ContrastiveMapper, LinearMapper, MLPMapper, ProcrustesMapper,
                      make_mapper)
from .transfer import CrossLingualClassifier
from .tuning import EncoderTuner, tune_encoder

__all__ = [
    "__version__", "LangAlign", "AveragedEncoder", "Encoder", "FunctionEncoder", "load_encoder", "available_encoders",
    "LinearMapper", "ProcrustesMapper", "CenteringMapper", "MLPMapper", "AutoEncoderMapper", "ContrastiveMapper",
    "make_mapper",
    "CrossLingualClassifier", "LangAlignError", "ArtefactError", "DataError", "EncoderNotAvailableError",
    "EncoderMismatchError", "EncoderTuner", "tune_encoder",
]
