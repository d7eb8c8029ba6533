"""Classification metrics and a paired significance test, in plain numpy/scipy.

Results are JSON-serialisable dicts (native Python ints/floats/strs) so the CLI
can write them straight into a report file.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from .._labels import check_labels

__all__ = ["classification_report", "mcnemar", "format_report"]

# McNemar: below this many discordant pairs the chi-square approximation is poor,
# so use the exact binomial test instead.
EXACT_MCNEMAR_BELOW = 25


def _native(x: Any) -> Any:
    """numpy scalar -> Python scalar, so json.dumps accepts the result."""
    return x.item() if isinstance(x, np.generic) else x


def _as_labels(y: Any, name: str) -> np.ndarray:
    # Strings or integers, one type per array (a NaN or a mix of 1 and "1" is an error).
    return check_labels(y, name)


def _same_type(**arrays: np.ndarray) -> None:
    """Labels of different types never compare equal: refuse rather than score every sample as a miss."""
    kinds = {k: ("strings" if v.dtype.kind == "U" else "integers") for k, v in arrays.items() if v.size}
    if len(set(kinds.values())) > 1:
        shown = ", ".join(f"{k} holds {t}" for k, t in kinds.items())
        raise TypeError(f"labels of different types cannot be compared ({shown}); convert one side first "
                        "(CrossLingualClassifier.evaluate matches integer classes with their decimal text)")


def _check_same_length(**arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"label arrays must have the same length: {shown}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError("cannot score an empty set of predictions")
    return n


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 -> 0, matching scikit-learn's zero_division=0 convention.
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_report(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray,
                          labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and a confusion matrix.

    ``labels`` fixes the class order (and restricts the per-class table and macro
    average to those classes, like scikit-learn); by default it is the sorted union
    of the labels seen in ``y_true`` and ``y_pred``. Labels are strings or ints, one type for all
    (see :mod:`langalign._labels`).
    Precision/recall/F1 of a class with an empty denominator are 0.

    ``confusion_matrix[i][j]`` counts samples of true class ``labels[i]`` predicted
    as ``labels[j]``. Accuracy is over all samples, even ones whose label is not in
    ``labels``.
    """
    yt = _as_labels(y_true, "y_true")
    yp = _as_labels(y_pred, "y_pred")
    n = _check_same_length(y_true=yt, y_pred=yp)
    _same_type(y_true=yt, y_pred=yp)
    if labels is None:
        try:
            label_arr = np.unique(np.concatenate([yt, yp]))
        except TypeError:
            raise TypeError("labels in y_true/y_pred are of mixed types and cannot be sorted; "
                            "pass labels= explicitly") from None
    else:
        label_arr = _as_labels(list(labels), "labels")
        if len(label_arr) == 0:
            raise ValueError("labels must be a non-empty 1-D sequence")
        _same_type(y_true=yt, labels=label_arr)
        if len(np.unique(label_arr)) != len(label_arr):
            raise ValueError("labels contains duplicates")
    k = len(label_arr)

    # Map labels to 0..k-1 (-1 for labels outside `labels`) via a dict: works for
    # any hashable label type and keeps the user's order.
    index = {_native(v): i for i, v in enumerate(label_arr)}
    ti = np.fromiter((index.get(_native(v), -1) for v in yt), dtype=np.int64, count=n)
    pi = np.fromiter((index.get(_native(v), -1) for v in yp), dtype=np.int64, count=n)

    keep = (ti >= 0) & (pi >= 0)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (ti[keep], pi[keep]), 1)
    # tp/fp/fn use all samples (a prediction outside `labels` is still a miss).
    tp = np.bincount(ti[(ti == pi) & (ti >= 0)], minlength=k)
    support = np.bincount(ti[ti >= 0], minlength=k)
    predicted = np.bincount(pi[pi >= 0], minlength=k)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, predicted + support)  # = 2PR/(P+R), exact with integer counts

    label_list = [_native(v) for v in label_arr]
    per_class = {
        str(lab): {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
        for i, lab in enumerate(label_list)
    }
    return {
        "n": int(n),
        "accuracy": float(np.mean(yt == yp)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "labels": label_list,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def mcnemar(y_true: Sequence[Any], pred_a: Sequence[Any], pred_b: Sequence[Any]) -> dict[str, Any]:
    """McNemar's test: do classifiers A and B differ in accuracy on the same samples?

    ``b`` counts samples A gets right and B wrong, ``c`` the reverse. With fewer than
    25 discordant pairs the two-sided exact binomial test is used (statistic =
    min(b, c)); otherwise the chi-square test with continuity correction,
    ``(|b - c| - 1)^2 / (b + c)`` on 1 degree of freedom. ``b + c == 0`` gives p = 1.
    """
    yt = _as_labels(y_true, "y_true")
    pa = _as_labels(pred_a, "pred_a")
    pb = _as_labels(pred_b, "pred_b")
    n = _check_same_length(y_true=yt, pred_a=pa, pred_b=pb)
    _same_type(y_true=yt, pred_a=pa, pred_b=pb)
    ok_a = pa == yt
    ok_b = pb == yt
    b = int(np.sum(ok_a & ~ok_b))
    c = int(np.sum(~ok_a & ok_b))
    method, statistic, p = _mcnemar(b, c)
    return {
        "n": int(n), "b": b, "c": c, "statistic": statistic, "p_value": p, "method": method,
        "accuracy_a": float(ok_a.mean()), "accuracy_b": float(ok_b.mean()),
    }


def _mcnemar(b: int, c: int) -> tuple[str, float, float]:
    m = b + c
    if m == 0:
        return "none", 0.0, 1.0
    if m < EXACT_MCNEMAR_BELOW:
        return "exact", float(min(b, c)), float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), m, 0.5)))
    statistic = float((abs(b - c) - 1) ** 2 / m)
    return "chi2", statistic, float(stats.chi2.sf(statistic, df=1))


def mcnemar_p(b: int, c: int) -> float:
    """McNemar's p-value from the discordant counts: ``b`` items only A gets right, ``c`` only B."""
    return _mcnemar(int(b), int(c))[2]


def cohen_kappa(pred_a: Sequence[Any] | np.ndarray, pred_b: Sequence[Any] | np.ndarray) -> float:
    """Agreement of two label sequences beyond chance: 1 = identical, 0 = chance level.

    Unlike raw agreement it does not reward a classifier that always says the same
    thing: kappa is 0 whenever one side is constant (also when both sides are the same
    constant, where the textbook formula is 0/0: such agreement carries no information).
    """
    a = _as_labels(pred_a, "pred_a")
    b = _as_labels(pred_b, "pred_b")
    n = _check_same_length(pred_a=a, pred_b=b)
    if n == 0:
        raise ValueError("cohen_kappa needs at least one pair of labels")
    observed = float(np.mean(a == b))
    labels = np.unique(np.concatenate([a, b]))
    expected = float(sum(np.mean(a == lab) * np.mean(b == lab) for lab in labels))
    if expected >= 1.0:
        return 0.0
    return (observed - expected) / (1.0 - expected)


def format_report(report: dict[str, Any], digits: int = 4) -> str:
    """Render a :func:`classification_report` dict as a fixed-width text table."""
    labels = [str(lab) for lab in report["labels"]]
    width = max([len("macro avg"), len("accuracy")] + [len(s) for s in labels]) + 2
    col = max(digits + 3, 9)
    head = f"{'':<{width}}" + "".join(f"{h:>{col}}" for h in ("precision", "recall", "f1", "support"))
    lines = [head, ""]
    for lab in labels:
        r = report["per_class"][lab]
        lines.append(f"{lab:<{width}}" + f"{r['precision']:>{col}.{digits}f}{r['recall']:>{col}.{digits}f}"
                     f"{r['f1']:>{col}.{digits}f}{r['support']:>{col}d}")
    lines.append("")
    n = report["n"]
    lines.append(f"{'accuracy':<{width}}" + f"{'':>{col}}{'':>{col}}{report['accuracy']:>{col}.{digits}f}{n:>{col}d}")
    lines.append(f"{'macro avg':<{width}}" + f"{report['macro_precision']:>{col}.{digits}f}"
                 f"{report['macro_recall']:>{col}.{digits}f}{report['macro_f1']:>{col}.{digits}f}{n:>{col}d}")
    lines.append("")
    lines.append("confusion matrix (rows = true, columns = predicted):")
    cm = report["confusion_matrix"]
    cw = max([len(s) for s in labels] + [len(str(v)) for row in cm for v in row]) + 2
    lines.append(f"{'':<{width}}" + "".join(f"{s:>{cw}}" for s in labels))
    for lab, row in zip(labels, cm, strict=True):
        lines.append(f"{lab:<{width}}" + "".join(f"{v:>{cw}d}" for v in row))
    return "\n".join(lines)
