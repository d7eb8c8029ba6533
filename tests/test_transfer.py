"""CrossLingualClassifier on synthetic encoders (fast) and on real SIB-200 (integration)."""
import numpy as np
import pytest

import langalign as la
from langalign.errors import ArtefactError
from langalign.transfer import CrossLingualClassifier, similarity

TOPICS = ["sport", "food", "tech"]


def toy_encoders(dim=24, seed=0):
    """English and 'target' encoders: topic direction + noise; the target space is rotated and shifted."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 2
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))

    def vec(text):
        topic, idx = text.split("-")[-2:]
        r = np.random.default_rng(int(idx) + 1000 * TOPICS.index(topic))
        return centres[TOPICS.index(topic)] + r.normal(size=dim)

    en = la.FunctionEncoder(lambda ts: np.array([vec(t) for t in ts]), "toy-en", dim)
    xx = la.FunctionEncoder(lambda ts: np.array([vec(t) @ Q + 3.0 for t in ts]), "toy-xx", dim)
    return en, xx


def corpus(n, lang="en", offset=0):
    texts = [f"{lang}-{TOPICS[i % 3]}-{i + offset}" for i in range(n)]
    return texts, [TOPICS[i % 3] for i in range(n)]


@pytest.fixture
def fitted():
    en, xx = toy_encoders()
    par_en, _ = corpus(300, offset=5000)
    align = la.LangAlign(en, xx, mapper="procrustes").fit(par_en, [t.replace("en-", "xx-") for t in par_en])
    return align


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_transfer_beats_zero_shot_on_rotated_space(fitted, mode):
    texts, labels = corpus(150)
    test_texts, test_labels = corpus(90, lang="xx", offset=900)
    clf = CrossLingualClassifier(fitted, mode=mode).fit(texts, labels)
    acc = clf.evaluate(test_texts, test_labels)["accuracy"]
    zs = CrossLingualClassifier(la.LangAlign(fitted.source_encoder, fitted.target_encoder), mode="zero-shot")
    zs_acc = zs.fit(texts, labels).evaluate(test_texts, test_labels)["accuracy"]
    assert acc > 0.9 and acc > zs_acc + 0.2


def test_pair_task_and_round_trip(tmp_path, fitted):
    texts, labels = corpus(120)
    pairs = list(zip(texts, texts[1:] + texts[:1], strict=True))
    clf = CrossLingualClassifier(fitted, mode="reverse", head="mlp",
                                 head_params={"epochs": 5, "seed": 0, "device": "cpu"}).fit(pairs, labels)
    xx_pairs = [(a.replace("en-", "xx-"), b.replace("en-", "xx-")) for a, b in pairs[:20]]
    before = clf.predict(xx_pairs)
    clf.save(tmp_path / "clf")
    again = CrossLingualClassifier.load(tmp_path / "clf", fitted.source_encoder, fitted.target_encoder)
    assert np.array_equal(again.predict(xx_pairs), before)
    assert again.mode == "reverse" and again.pair_task_
    with pytest.raises(ValueError, match="trained on sentence pairs"):
        again.predict(["xx-sport-1"])


def test_zero_shot_round_trip_and_errors(tmp_path):
    en, _ = toy_encoders()
    texts, labels = corpus(60)
    clf = CrossLingualClassifier(en, mode="zero-shot").fit(texts, labels)
    clf.save(tmp_path / "z")
    again = CrossLingualClassifier.load(tmp_path / "z", en, en)
    assert list(again.predict(texts[:9])) == list(clf.predict(texts[:9]))
    with pytest.raises(ValueError, match="mode must be"):
        CrossLingualClassifier(en, mode="sideways")
    with pytest.raises(TypeError, match="needs a fitted LangAlign"):
        CrossLingualClassifier(en, mode="forward")
    with pytest.raises(ValueError, match="not fitted"):
        CrossLingualClassifier(en, mode="zero-shot").predict(["x-sport-1"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        CrossLingualClassifier(en, mode="zero-shot").fit(texts[:3], ["a", "a", "a"])
    with pytest.raises(ArtefactError):
        CrossLingualClassifier.load(tmp_path / "missing")


def test_wrap_existing_english_head(fitted):
    from langalign.heads import LogisticRegressionHead

    texts, labels = corpus(150)
    head = LogisticRegressionHead().fit(fitted.encode_source(texts), labels)
    clf = CrossLingualClassifier.from_head(fitted, head)
    test_texts, test_labels = corpus(60, lang="xx", offset=700)
    assert clf.evaluate(test_texts, test_labels)["accuracy"] > 0.9


def test_similarity_raw_and_mapped(fitted):
    pairs = [("xx-sport-1", "xx-sport-1"), ("xx-sport-2", "xx-food-3")]
    raw = similarity(fitted, pairs)
    mapped = similarity(fitted, pairs, space="source")
    assert raw[0] == pytest.approx(1.0, abs=1e-5) and mapped[0] == pytest.approx(1.0, abs=1e-5)
    assert raw[1] < 0.99


@pytest.mark.integration
def test_sib200_reverse_is_never_worse_than_zero_shot_real():
    # With the old head defaults (L2 + standardise, C=1) reverse beat zero-shot here
    # (the "+1.5" the issue calls a gain over a weakened baseline). With the stronger
    # default head zero-shot is 82.8 and reverse on all train pairs 82.4 (3 of 612 items):
    # the promise that holds is "never significantly worse than no map".
    from langalign.data import load_sib200, load_sib200_parallel
    from langalign.evaluation import mcnemar

    use = la.load_encoder("use-multilingual")
    en = load_sib200("en", "train")
    X = use.encode(en.texts)
    accs = {"zero-shot": [], "reverse": []}
    for lang in ("ko", "ja", "zh"):
        te = load_sib200(lang, "test")
        Yt = use.encode(te.texts)
        par = load_sib200_parallel("en", lang, "train")
        align = la.LangAlign(use, use).fit_embeddings(use.encode(par.source), use.encode(par.target))
        pred = {}
        for mode in accs:
            clf = CrossLingualClassifier(align, mode=mode).fit_embeddings(X, en.labels)
            pred[mode] = clf.predict_embeddings(Yt)
            accs[mode].append(np.mean(pred[mode] == np.array(te.labels)))
        mc = mcnemar(te.labels, list(pred["zero-shot"]), list(pred["reverse"]))
        assert mc["p_value"] >= 0.05 or mc["c"] > mc["b"], (lang, mc)
    print({k: np.round(v, 3) for k, v in accs.items()})
    assert np.mean(accs["zero-shot"]) >= 0.80  # the default head (82.8 here; 78.4 with the old defaults)
    assert np.mean(accs["reverse"]) >= np.mean(accs["zero-shot"]) - 0.01


def test_documented_top_level_names_exist():
    # The README's examples use these through `import langalign as la`.
    for name in ("LangAlign", "CrossLingualClassifier", "load_encoder", "LinearMapper", "EncoderMismatchError"):
        assert hasattr(la, name), name


# -- model selection without target labels -----------------------------------------------

def test_agreement_on_unlabelled_pairs_ranks_transfer_like_target_accuracy(fitted):
    from langalign.transfer import select_classifier

    texts, labels = corpus(150)
    test_texts, test_labels = corpus(90, lang="xx", offset=900)
    par_en, _ = corpus(60, offset=7000)  # unlabelled parallel pairs, unseen by the aligner
    par_xx = [t.replace("en-", "xx-") for t in par_en]
    zs = CrossLingualClassifier(la.LangAlign(fitted.source_encoder, fitted.target_encoder),
                                mode="zero-shot").fit(texts, labels)
    cands = {"zero-shot": zs, "reverse": CrossLingualClassifier(fitted, mode="reverse").fit(texts, labels)}
    acc = {k: c.evaluate(test_texts, test_labels)["accuracy"] for k, c in cands.items()}
    agree = {k: c.agreement(par_en, par_xx) for k, c in cands.items()}
    assert agree["reverse"]["kappa"] > 0.8 > agree["zero-shot"]["kappa"] and acc["reverse"] > acc["zero-shot"]
    assert agree["reverse"]["n"] == 60
    by_pairs = select_classifier(cands, parallel=(par_en, par_xx))
    assert by_pairs["chosen"] == "reverse" and by_pairs["by"].startswith("agreement")
    by_dev = select_classifier(cands, dev=(test_texts[:30], test_labels[:30]))
    assert by_dev["chosen"] == "reverse" and set(by_dev["scores"]) == set(cands)
    with pytest.raises(ValueError, match="dev="):
        select_classifier(cands)


def test_a_head_that_always_says_the_same_gets_no_agreement_credit(fitted):
    # Raw agreement would be perfect for a constant classifier; kappa gives it 0.
    texts, _ = corpus(30)
    par_en, _ = corpus(40, offset=7000)
    clf = CrossLingualClassifier(fitted, mode="reverse").fit(texts, ["a"] * 29 + ["b"])
    clf.head_.intercept_[:] = 1e6  # force one class everywhere
    got = clf.agreement(par_en, [t.replace("en-", "xx-") for t in par_en])
    assert got["agreement"] == 1.0 and got["kappa"] == 0.0
