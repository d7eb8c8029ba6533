"""Unit tests for the mappers on small synthetic arrays."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import langalign as la
from langalign.mappers import MAPPER_CLASSES, NotFittedError, PairStats, accumulate, make_mapper, mapper_from_state

FAST_NEURAL = dict(hidden_dim=64, epochs=60, batch_size=64, patience=10, seed=0, device="cpu")


def noisy_linear(n=600, d_in=24, d_out=16, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d_in)).astype(np.float32)
    W = rng.normal(size=(d_in, d_out)) / np.sqrt(d_in)
    b = rng.normal(size=d_out)
    Y = (X @ W + b + noise * rng.normal(size=(n, d_out))).astype(np.float32)
    return X, Y, W, b


@pytest.mark.parametrize("name", ["linear", "ridge", "mlp", "autoencoder"])
def test_mapper_recovers_known_linear_map(name):
    X, Y, W, b = noisy_linear()
    Xte, Yte, _, _ = noisy_linear(n=200, seed=0)
    rng = np.random.default_rng(1)
    Xte = rng.normal(size=(200, 24)).astype(np.float32)
    Yte = Xte @ W + b
    params = FAST_NEURAL if name in ("mlp", "autoencoder") else {}
    m = make_mapper(name, **params).fit(X, Y)
    err = float(np.mean((m.transform(Xte) - Yte) ** 2))
    assert err < 0.01, (name, err)
    assert float(np.var(Yte)) > 0.3  # the floor above is meaningful against the signal


def test_linear_coefficients_close_to_truth():
    X, Y, W, b = noisy_linear(n=2000)
    m = la.LinearMapper(alpha=1e-6, prior="zero").fit(X, Y)
    assert np.allclose(m.coef_, W, atol=0.01)
    assert np.allclose(m.intercept_, b, atol=0.01)


def test_procrustes_recovers_rotation_and_is_orthogonal():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    X = rng.normal(size=(500, 32)).astype(np.float32)
    Y = (X @ Q + 0.01 * rng.normal(size=(500, 32))).astype(np.float32)
    m = la.ProcrustesMapper().fit(X, Y)
    assert np.allclose(m.coef_.T @ m.coef_, np.eye(32), atol=1e-4)
    assert np.allclose(m.coef_, Q, atol=0.01)


@pytest.mark.parametrize("d_in,d_out", [(48, 16), (16, 48)])
def test_procrustes_different_dimensions_is_semi_orthogonal(d_in, d_out):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, d_in)).astype(np.float32)
    Y = rng.normal(size=(300, d_out)).astype(np.float32)
    W = la.ProcrustesMapper().fit(X, Y).coef_
    r = min(d_in, d_out)
    G = W.T @ W if d_in >= d_out else W @ W.T
    assert G.shape == (r, r)
    assert np.allclose(G, np.eye(r), atol=1e-4)


def test_identity_prior_never_worse_than_doing_nothing():
    # Y is X plus noise: the best map is (close to) the identity. With few pairs,
    # plain ridge overfits; the identity-shrunk map must not.
    rng = np.random.default_rng(0)
    d = 64
    X = rng.normal(size=(80, d)).astype(np.float32)
    Y = (X + 0.3 * rng.normal(size=(80, d))).astype(np.float32)
    Xte = rng.normal(size=(500, d)).astype(np.float32)
    Yte = (Xte + 0.3 * rng.normal(size=(500, d))).astype(np.float32)
    raw = np.mean((Xte - Yte) ** 2)
    shrunk = la.LinearMapper().fit(X, Y)
    plain = la.LinearMapper(prior="zero").fit(X, Y)
    assert np.mean((shrunk.transform(Xte) - Yte) ** 2) <= raw * 1.02
    assert np.mean((plain.transform(Xte) - Yte) ** 2) > raw  # shows the problem is real
    assert shrunk.choice_ and shrunk.cv_scores_  # the chosen strength is recorded


def test_cv_mse_from_sums_matches_direct_computation():
    X, Y, _, _ = noisy_linear(n=300)
    m = la.LinearMapper(alpha="auto", prior="zero", cv=3).fit(X, Y)
    stats = accumulate([(X, Y)], X.shape[1], Y.shape[1], 3)
    folds = stats.fold_of(0, len(X))
    alpha = m.alpha_
    sse = 0.0
    for k in range(3):
        tr, va = folds != k, folds == k
        f = la.LinearMapper(alpha=alpha, prior="zero").fit(X[tr], Y[tr])
        sse += float(np.sum((f.transform(X[va]).astype(np.float64) - Y[va]) ** 2))
    assert np.isclose(m.cv_scores_[m.choice_], sse / Y.size, rtol=1e-3)


def test_pairstats_chunking_gives_same_fit():
    X, Y, _, _ = noisy_linear(n=500)
    whole = la.LinearMapper().fit(X, Y)
    stats = PairStats(X.shape[1], Y.shape[1], n_folds=whole._n_folds(len(X)))
    for s in range(0, len(X), 37):
        stats.update(X[s : s + 37], Y[s : s + 37])
    chunked = la.LinearMapper().fit_stats(stats)
    assert chunked.choice_ == whole.choice_
    assert np.allclose(chunked.coef_, whole.coef_, atol=1e-5)


def test_centering_shifts_means():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 8)).astype(np.float32) + 3
    Y = rng.normal(size=(100, 8)).astype(np.float32) - 1
    m = la.CenteringMapper().fit(X, Y)
    assert np.allclose(m.transform(X).mean(0), Y.mean(0), atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "autoencoder", "mlp-paper"])
@pytest.mark.parametrize("loss", ["mse", "cosine", "infonce"])
def test_neural_fixed_seed_repeats_and_records_history(name, loss):
    X, Y, _, _ = noisy_linear(n=200)
    params = {**FAST_NEURAL, "epochs": 5, "loss": loss}
    a = make_mapper(name, **params).fit(X, Y)
    b = make_mapper(name, **params).fit(X, Y)
    assert np.array_equal(a.transform(X), b.transform(X))
    assert len(a.history_) >= 2 and {"epoch", "train_loss", "val_loss"} <= set(a.history_[0])


def test_paper_mlp_has_six_linear_layers_with_relu_and_dropout():
    import torch

    m = la.MLPMapper(residual=False, epochs=1, device="cpu", hidden_dim=32).fit(*noisy_linear(n=50)[:2])
    mods = list(m.net_)
    assert sum(isinstance(x, torch.nn.Linear) for x in mods) == 6
    assert sum(isinstance(x, torch.nn.ReLU) for x in mods) == 5
    assert sum(isinstance(x, torch.nn.Dropout) for x in mods) == 5


def test_autoencoder_is_three_plus_three_layers():
    import torch

    m = la.AutoEncoderMapper(residual=False, epochs=1, device="cpu").fit(*noisy_linear(n=50)[:2])
    enc, dec = m.net_[0], m.net_[-1]
    assert sum(isinstance(x, torch.nn.Linear) for x in enc) == 3
    assert sum(isinstance(x, torch.nn.Linear) for x in dec) == 3
    assert enc[-1].out_features == 256


def test_residual_neural_not_worse_than_linear_on_heldout():
    X, Y, _, _ = noisy_linear(n=400)
    m = la.MLPMapper(**FAST_NEURAL).fit(X, Y)
    assert m.best_val_loss_ <= m.history_[0]["val_loss"] + 1e-9


@pytest.mark.parametrize("name", ["linear", "procrustes", "centering", "mlp", "autoencoder", "mlp-paper"])
def test_state_round_trip_identical_outputs(name):
    X, Y, _, _ = noisy_linear(n=120, d_in=16, d_out=16)
    params = {**FAST_NEURAL, "epochs": 3} if "mlp" in name or "auto" in name else {}
    m = make_mapper(name, **params).fit(X, Y)
    again = mapper_from_state(m.get_config(), m.state_dict())
    assert type(again) is type(m)
    assert np.array_equal(again.transform(X), m.transform(X))


def test_get_params_and_clone():
    m = la.MLPMapper(hidden_dim=7, n_layers=3)
    p = m.get_params()
    assert p["hidden_dim"] == 7 and p["n_layers"] == 3
    c = m.clone()
    assert c.get_params() == p and not c.is_fitted
    with pytest.raises(ValueError):
        m.set_params(nope=1)


def test_errors():
    X, Y, _, _ = noisy_linear(n=50)
    with pytest.raises(NotFittedError):
        la.LinearMapper().transform(X)
    with pytest.raises(ValueError, match="same number of rows"):
        la.LinearMapper().fit(X, Y[:10])
    bad = X.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(ValueError, match="3, 7"):
        la.LinearMapper().fit(bad, Y)
    m = la.LinearMapper().fit(X, Y)
    with pytest.raises(ValueError, match="dimension"):
        m.transform(X[:, :5])
    with pytest.raises(ValueError, match="unknown mapper"):
        make_mapper("quantum")
    with pytest.raises(ValueError, match="equal dimensions"):
        la.LinearMapper(prior="identity").fit(X, Y)
    assert m.transform(np.empty((0, X.shape[1]))).shape == (0, Y.shape[1])


def test_registry_names_are_classes():
    assert set(MAPPER_CLASSES) == {"LinearMapper", "ProcrustesMapper", "CenteringMapper", "MLPMapper",
                                   "AutoEncoderMapper", "ContrastiveMapper"}


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 60), d_in=st.integers(1, 12), d_out=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_linear_and_procrustes_shapes_and_finiteness(n, d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d_in)).astype(np.float32)
    Y = rng.normal(size=(n, d_out)).astype(np.float32)
    for m in (la.LinearMapper(), la.ProcrustesMapper()):
        out = m.fit(X, Y).transform(X)
        assert out.shape == (n, d_out) and out.dtype == np.float32 and np.isfinite(out).all()


# -- Procrustes shrunk toward the identity ------------------------------------------------

def near_identity_pairs(n, d, noise, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = X + noise * rng.normal(size=(n, d)) / np.sqrt(d) + 0.05  # translations: close, plus a language offset
    return X.astype(np.float32), Y.astype(np.float32)


def _cos(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return float(np.mean(np.sum(A * B, axis=1)))


def test_shrunk_procrustes_never_worse_than_no_map_on_held_out_pairs():
    # Few pairs in many dimensions, truth = identity + offset: the plain rotation overfits
    # (the SIB-200 case: mapped cosine 0.617 vs 0.720 unmapped); the shrunk one must not.
    X, Y = near_identity_pairs(120, 64, 0.8, seed=0)
    Xte, Yte = near_identity_pairs(1000, 64, 0.8, seed=1)
    plain = la.ProcrustesMapper(shrink=False).fit(X, Y)
    shrunk = la.ProcrustesMapper().fit(X, Y)
    raw_mse, raw_cos = np.mean((Xte - Yte) ** 2), _cos(Xte, Yte)
    assert _cos(plain.transform(Xte), Yte) < raw_cos - 0.02  # shows the problem is real
    assert np.mean((shrunk.transform(Xte) - Yte) ** 2) <= raw_mse * 1.01
    assert _cos(shrunk.transform(Xte), Yte) >= raw_cos - 0.005
    assert shrunk.choice_ != "rotation" and shrunk.cv_scores_["identity"] >= min(shrunk.cv_scores_.values())
    assert np.allclose(shrunk.coef_.T @ shrunk.coef_, np.eye(64), atol=1e-4)  # still orthogonal


@settings(max_examples=15, deadline=None)
@given(n=st.integers(6, 80), d=st.integers(2, 24), noise=st.floats(0.05, 2.0), seed=st.integers(0, 2**16))
def test_shrunk_procrustes_cv_choice_never_worse_than_identity(n, d, noise, seed):
    # The identity and the mean shift are candidates, so the cross-validated error of the
    # chosen map is never above theirs, whatever the data.
    X, Y = near_identity_pairs(n, d, noise, seed)
    m = la.ProcrustesMapper().fit(X, Y)
    best = m.cv_scores_[m.choice_]
    assert best <= m.cv_scores_["identity"] + 1e-12 and best <= m.cv_scores_["shift"] + 1e-12
    assert np.allclose(m.coef_.T @ m.coef_, np.eye(d), atol=1e-4)
    assert np.isfinite(m.transform(X)).all()


def test_shrunk_procrustes_recovers_a_true_rotation_when_the_data_supports_it():
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    X = rng.normal(size=(800, 24))
    Y = X @ Q + 0.3 + 0.05 * rng.normal(size=(800, 24))
    m = la.ProcrustesMapper().fit(X, Y)
    assert m.choice_ == "rotation" and m.strength_ == 0.0
    assert np.allclose(m.coef_, Q, atol=0.02)


def test_plain_procrustes_is_the_unregularised_rotation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 16))
    Y = X + 0.5 * rng.normal(size=(60, 16))
    plain = make_mapper("procrustes-plain").fit(X, Y)
    assert plain.shrink is False and plain.choice_ == "rotation" and plain.cv_scores_ == {}
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    U, _, Vt = np.linalg.svd(Xc.T @ Yc)
    np.testing.assert_allclose(plain.coef_, U @ Vt, atol=1e-5)
    np.testing.assert_allclose(plain.transform(X), Xc @ (U @ Vt) + Y.mean(0), atol=1e-4)


def test_procrustes_cv_error_from_sums_matches_direct_computation():
    from langalign.mappers.procrustes import _orthogonal_sse, _procrustes_solve

    X, Y = near_identity_pairs(90, 12, 0.7, seed=5)
    stats = accumulate([(X, Y)], 12, 12, 3)
    folds = stats.fold_of(0, len(X))
    for cand in [("rotation", 0.0), ("rotation", 0.2), ("shift", np.inf), ("identity", np.inf)]:
        W, mx, my = _procrustes_solve(stats.total(exclude=1), cand, True)
        va = folds == 1
        direct = float(np.sum(((X[va] - mx) @ W + my - Y[va]) ** 2))
        assert np.isclose(_orthogonal_sse(stats.fold(1), W, mx, my), direct, rtol=1e-6)


def test_procrustes_prior_strength_moves_from_the_plain_rotation_to_the_identity():
    from langalign.mappers.procrustes import _procrustes_solve

    X, Y = near_identity_pairs(200, 10, 1.0, seed=2)
    total = accumulate([(X, Y)], 10, 10, 1).total()
    plain = _procrustes_solve(total, ("rotation", 0.0), True)[0]
    dist = [np.linalg.norm(_procrustes_solve(total, ("rotation", b), True)[0] - np.eye(10))
            for b in (1e-6, 0.1, 1, 1e3)]
    assert np.allclose(_procrustes_solve(total, ("rotation", 1e-9), True)[0], plain, atol=1e-6)
    assert dist == sorted(dist, reverse=True) and dist[-1] < 1e-2


def test_procrustes_saved_before_shrinkage_loads_and_maps_identically():
    X, Y = near_identity_pairs(100, 8, 0.5, seed=4)
    m = la.ProcrustesMapper(shrink=False).fit(X, Y)
    cfg = m.get_config()
    # what a pre-shrinkage artefact holds: no shrink/cv parameters, no choice in fit_info
    old = {**cfg, "params": {"center": True, "normalize": False}, "fit_info": {"n_pairs": 100, "rank": 8}}
    again = mapper_from_state(old, m.state_dict())
    assert np.array_equal(again.transform(X), m.transform(X))
    assert again.choice_ == "rotation" and again.shrink is True  # only a default; the map is what was saved
