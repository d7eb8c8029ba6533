"""Whether an encoder is the one an artefact was made with: names, dimensions and probe fingerprints.

Every saved aligner, classifier, index and shard folder records its encoders' identity
(:meth:`langalign.encoders.Encoder.identity`); :func:`check_encoder_identity` compares a recorded identity with
the encoder at hand before its vectors are used, and :func:`vector_space` says which space an encoder's vectors
live in (its own, or a distilled encoder's teacher's).
"""
from __future__ import annotations

import hashlib
from typing import Any

from .encoders import PROBE_DECIMALS, Encoder, canonical_encoder_name, names_folder, probe_difference
from .errors import EncoderMismatchError


def describe_identity(ident: dict | None) -> str:
    if not ident:
        return "an unknown encoder"
    fp = ident.get("fingerprint")
    if ident.get("name") is None:  # fitted from precomputed vectors, no encoder named
        return f"an unrecorded encoder (precomputed {ident.get('dim')}-d embeddings)"
    return f"{ident.get('name')!r} ({ident.get('dim')}-d{', fingerprint ' + str(fp) if fp else ''})"


def probe_fingerprint(dim: Any, probe: list) -> str | None:
    """The fingerprint that ``probe`` values imply (as :meth:`Encoder.fingerprint` computes it)."""
    try:
        payload = f"{dim}|" + ",".join(f"{float(v):.{PROBE_DECIMALS}f}" for v in probe)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def safe_identity(encoder: Encoder) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return encoder.identity()


def check_encoder_identity(recorded: dict | None, encoder: Encoder, what: str, force: bool = False) -> None:
    """Raise :class:`EncoderMismatchError` unless ``encoder`` is the one ``recorded`` in an artefact.

    Compares the name, the dimension and, when the artefact has one, the probe
    signature (with :data:`PROBE_TOLERANCE`). ``force=True`` turns a name or
    fingerprint mismatch into a warning; a dimension mismatch can never be forced
    (the maps would not even apply).
    """
    if not isinstance(recorded, dict):
        return
    problems = []
    rdim = recorded.get("dim")
    if isinstance(rdim, int) and rdim != encoder.dim:
        raise EncoderMismatchError(
            f"{what} was made with encoder {describe_identity(recorded)} but is being used with {encoder.name!r} "
            f"({encoder.dim}-d); the dimensions differ, so these vectors cannot be used with it")
    rname = recorded.get("name")
    if (isinstance(rname, str) and canonical_encoder_name(rname) != canonical_encoder_name(encoder.name)
            and not names_folder(rname, encoder)):  # a tuned folder recorded by its path is that encoder
        problems.append("names differ")
    probe = recorded.get("probe")
    if isinstance(probe, list) and probe:
        how = "they cannot be compared"
        try:
            mine = encoder.probe_signature()
            same, how = probe_difference(probe, mine)
        except Exception:  # unreadable recorded values, or an encoder that cannot encode the probes
            same = False
        if not same:
            problems.append(f"its vectors of the probe sentences differ ({how}: a different model or version)")
            fp = recorded.get("fingerprint")
            if isinstance(fp, str) and fp != probe_fingerprint(rdim, probe):
                # Same fingerprint printed on both sides would read as a contradiction: say why.
                problems.append(f"the recorded fingerprint {fp} does not match the recorded probe values, so "
                                "the artefact's encoder entry was edited or damaged")
    if not problems:
        return
    current = safe_identity(encoder) if isinstance(probe, list) else {"name": encoder.name, "dim": encoder.dim}
    msg = (f"{what} was made with encoder {describe_identity(recorded)} but is being used with "
           f"{describe_identity(current)}: "
           f"{' and '.join(problems)}. Vectors from two different encoders do not mix; use the recorded encoder, "
           f"or pass force=True (CLI: --force) if you are sure they are equivalent")
    if force:
        import warnings

        warnings.warn(msg.split(". Vectors")[0] + " (ignored: force=True)", RuntimeWarning, stacklevel=3)
        return
    raise EncoderMismatchError(msg)


def vector_space(encoder: Encoder) -> dict:
    """The identity (name, dim, fingerprint) of the space ``encoder``'s vectors live in: its own, or, for an
    encoder tuned in distil mode, its teacher's (recorded in ``langalign_tuning.json`` as ``vector_space``), or
    the one an encoder declares as ``vector_space_`` (an :class:`~langalign.averaged_encoder.AveragedEncoder`)."""
    declared = getattr(encoder, "vector_space_", None)
    if isinstance(declared, dict) and declared.get("dim") == encoder.dim and declared.get("name"):
        return dict(declared)
    inner = getattr(encoder, "encoder", None)  # a cache wrapper: the wrapped encoder's tuning record
    meta = getattr(encoder, "tuning", None) or getattr(inner, "tuning", None)
    space = meta.get("vector_space") if isinstance(meta, dict) else None
    if isinstance(space, dict) and space.get("dim") == encoder.dim and space.get("name"):
        return dict(space)
    return encoder.identity()


def space_problem(expected: dict | None, got: dict | None) -> str | None:
    """Why vectors of encoder identity ``got`` do not belong in the space of ``expected`` (None if they do).

    Dimensions must agree; names are compared canonically and fingerprints when both are known.
    """
    if not isinstance(expected, dict) or not isinstance(got, dict):
        return None
    if expected.get("dim") != got.get("dim"):
        return f"dimensions differ ({got.get('dim')} vs {expected.get('dim')})"
    a, b = expected.get("name"), got.get("name")
    if isinstance(a, str) and isinstance(b, str) and canonical_encoder_name(a) != canonical_encoder_name(b):
        return f"encoders differ ({b!r} vs {a!r})"
    fa, fb = expected.get("fingerprint"), got.get("fingerprint")
    if fa and fb and fa != fb:
        return f"fingerprints of {a!r} differ ({fb} vs {fa}): a different model or version"
    return None
