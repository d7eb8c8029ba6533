"""LogisticRegressionHead(C="cv"): C chosen per task by cross-validation on the training data."""
import json
import warnings

import numpy as np
import pytest

from langalign.heads import CV_GRID, LogisticRegressionHead, head_from_state, make_head


def blobs(n=240, d=12, k=3, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2
    y = np.arange(n) % k
    return (centres[y] + spread * rng.normal(size=(n, d))).astype(np.float32), y


def noisy_labels(n=300, d=40, seed=0):
    """Many noise features and a weak signal: strong regularisation (small C) generalises best."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 1.5 * rng.normal(size=n) > 0).astype(int)
    return X.astype(np.float32), y


def test_cv_head_picks_a_grid_value_and_records_it():
    X, y = blobs()
    h = LogisticRegressionHead(C="cv").fit(X, y)
    assert h.C_ in CV_GRID and set(h.cv_scores_) == set(CV_GRID)
    assert h.cv_scores_[h.C_] == max(h.cv_scores_.values())
    assert h.score(X, y) > 0.9
    fixed = LogisticRegressionHead().fit(X, y)
    assert fixed.C_ == 3.0 and fixed.get_config().get("fit_info") is None


def test_cv_head_follows_the_data():
    """Where the signal is weak among noise features, CV picks a smaller C than where classes are clean."""
    Xn, yn = noisy_labels()
    Xc, yc = blobs(spread=0.3)
    assert LogisticRegressionHead(C="cv", normalize=False).fit(Xn, yn).C_ < \
        LogisticRegressionHead(C="cv", normalize=False).fit(Xc, yc).C_


def test_cv_head_equals_a_fixed_head_at_the_chosen_C():
    X, y = noisy_labels(seed=3)
    cv = LogisticRegressionHead(C="cv").fit(X, y)
    fixed = LogisticRegressionHead(C=cv.C_).fit(X, y)
    np.testing.assert_array_equal(cv.coef_, fixed.coef_)


def test_cv_head_saves_loads_and_predicts_identically():
    X, y = blobs(seed=1)
    h = LogisticRegressionHead(C="cv").fit(X, y)
    config = json.loads(json.dumps(h.get_config()))
    assert config["params"]["C"] == "cv" and config["fit_info"]["C"] == h.C_
    back = head_from_state(config, h.state_dict())
    assert isinstance(back, LogisticRegressionHead) and back.C_ == h.C_
    np.testing.assert_array_equal(back.predict(X), h.predict(X))
    config.pop("fit_info")  # hand-trimmed config: still loads, the C it chose is unknown
    assert np.isnan(head_from_state(config, h.state_dict()).C_)


def test_cv_head_with_a_class_of_one_falls_back_to_the_fixed_C():
    X, y = blobs(n=31, k=2)
    y = np.where(np.arange(31) == 0, 2, y)  # class 2 has a single example
    with pytest.warns(RuntimeWarning, match="too few to cross-validate"):
        h = LogisticRegressionHead(C="cv").fit(X, y)
    assert h.C_ == 3.0


@pytest.mark.parametrize("bad", ["CV", "auto", 0, -1.0])
def test_bad_C_is_refused(bad):
    X, y = blobs(n=30)
    with pytest.raises(ValueError, match="C"):
        LogisticRegressionHead(C=bad).fit(X, y)


def test_make_head_and_classifier_take_cv():
    import langalign as la

    rng = np.random.default_rng(0)
    vocab = {"a": ["alpha", "beta", "gamma"], "b": ["delta", "epsilon", "zeta"]}
    texts = [" ".join(rng.choice(vocab[lab], 3)) for lab in "ab" * 20]
    labels = ["a", "b"] * 20
    enc = la.FunctionEncoder(lambda ts: np.array([[t.count("alpha") + t.count("beta") + t.count("gamma"),
                                                   t.count("delta") + t.count("epsilon") + t.count("zeta"), 1.0]
                                                  for t in ts], np.float32), dim=3, name="bag")
    assert make_head("logreg", C="cv").C == "cv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = la.CrossLingualClassifier(enc, mode="zero-shot", head_params={"C": "cv"}).fit(texts, labels)
    assert clf.head_.C_ in CV_GRID and list(clf.predict(["alpha beta", "zeta delta"])) == ["a", "b"]
