"""The BlazingText built-in: Word2Vec (skipgram, cbow, batch_skipgram, subwords) learns the
similarities of a corpus drawn from known word vectors and writes vectors.txt / vectors.bin in
word2vec's formats; supervised mode classifies fastText-labelled text, stops early, logs
validation:accuracy and answers SageMaker's inference requests (k labels and probabilities;
word vectors); bad input fails the job naming the line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from opensage.algorithms.blazingtext.serve import load
from opensage.algorithms.blazingtext.text import read_vectors_text
from tests.integration.builtins import deploy, invoke, metrics, model_dir, train

VOCAB, DIM = 200, 8
# Random letter strings: names like w12/w123 would share character n-grams by construction.
NAMES = ["".join(np.random.default_rng(i).choice(list("abcdefghijklmnopqrstuvwxyz"), size=7))
         for i in range(VOCAB)]


def corpus(sentences: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """Sentences whose words are drawn near a random direction: words with close latent
    vectors co-occur, so their true similarity is the latent cosine."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(VOCAB, DIM))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    lines = []
    for _ in range(sentences):
        p = np.exp(z @ (rng.normal(size=DIM) * 3.0))
        lines.append(" ".join(NAMES[i] for i in rng.choice(VOCAB, size=12, p=p / p.sum())))
    return "\n".join(lines) + "\n", z


def rho_against_truth(words: list[str], vectors: np.ndarray, z: np.ndarray) -> float:
    index = {w: i for i, w in enumerate(words)}
    rng = np.random.default_rng(5)
    pairs = [(a, b) for a, b in rng.integers(0, VOCAB, size=(600, 2))
             if a != b and NAMES[a] in index and NAMES[b] in index]
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ours = [v[index[NAMES[a]]] @ v[index[NAMES[b]]] for a, b in pairs]
    return float(spearmanr([z[a] @ z[b] for a, b in pairs], ours).statistic)


@pytest.mark.parametrize(("mode", "extra"), [("skipgram", {}), ("cbow", {}),
                                             ("batch_skipgram", {"batch_size": 4}),
                                             ("skipgram", {"subwords": "true", "buckets": 5000})])
def test_word2vec_modes_learn_similarities_and_write_vectors(sm, s3, tmp_path, mode, extra,
                                                             monkeypatch):
    text, z = corpus(3000)
    similarity = tmp_path / "wordsim"
    similarity.mkdir()
    rng = np.random.default_rng(9)
    pairs = rng.integers(0, VOCAB, size=(100, 2))
    (similarity / "synthetic.tsv").write_text("# word1\tword2\tscore\n" + "".join(
        f"{NAMES[a]}\t{NAMES[b]}\t{z[a] @ z[b]:.4f}\n" for a, b in pairs if a != b))
    monkeypatch.setenv("OPENSAGE_WORD_SIMILARITY_DIR", str(similarity))
    job = train(sm, s3, "blazingtext", {"mode": mode, "vector_dim": 16, "epochs": 5,
                                        "min_count": 2, "window_size": 4, "evaluation": "true",
                                        "sampling_threshold": 0.001,
                                        "learning_rate": 0.05 if mode == "cbow" else 0.025,
                                        **extra},
                {"train": (text.encode(), "text/plain")}, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    directory = model_dir(s3, job, tmp_path / "model")
    words, vectors = read_vectors_text(directory / "vectors.txt")
    assert rho_against_truth(words, vectors, z) > 0.8
    binary = (directory / "vectors.bin").read_bytes()
    header, _, rest = binary.partition(b"\n")
    assert header == f"{len(words)} 16".encode()
    first, _, rest = rest.partition(b" ")
    assert first.decode() == words[0]
    assert np.frombuffer(rest[:64], "<f4") == pytest.approx(vectors[0], abs=1e-5)
    assert metrics(job)["train:mean_rho"] > 0.6

    if mode == "skipgram" and extra:  # serve: vectors for words, and for unseen words
        model = load(directory)
        word = NAMES[3]
        known = model.vector(word)
        assert known == pytest.approx(vectors[words.index(word)], abs=1e-5)
        unseen = model.vector(word + "s")  # shares most character n-grams with the word
        assert float(unseen @ known) / float(np.linalg.norm(unseen) * np.linalg.norm(known)) > 0.5
        body, content_type = model.invoke(json.dumps({"instances": [word, "0"]}).encode(),
                                          "application/json")
        answer = json.loads(body)
        assert content_type == "application/json" and answer[0]["word"] == word
        assert answer[1]["vector"] == [0.0] * 16  # no row, no n-gram: zeros
        assert answer[0]["vector"] == pytest.approx(known.tolist(), abs=1e-5)


def labelled(sentences: int, seed: int) -> tuple[str, list[str]]:
    """Three classes; each sentence mixes class words, shared words and noise, and the class
    shows only in a bigram for class 2."""
    rng = np.random.default_rng(seed)
    lines, labels = [], []
    for _ in range(sentences):
        label = int(rng.integers(0, 3))
        words = list(rng.choice([f"n{i}" for i in range(50)], size=6))
        words += [f"c{label}_{int(rng.integers(0, 10))}" for _ in range(2)]
        rng.shuffle(words)
        lines.append(f"__label__{label} " + " ".join(words))
        labels.append(f"__label__{label}")
    return "\n".join(lines) + "\n", labels


def test_supervised_classifies_stops_early_and_serves(sm, s3, client, tmp_path):
    train_text, _ = labelled(1500, 0)
    valid_text, valid_labels = labelled(300, 1)
    job = train(sm, s3, "blazingtext", {"mode": "supervised", "epochs": 30, "min_count": 1,
                                        "vector_dim": 10, "learning_rate": 0.1,
                                        "early_stopping": "true", "min_epochs": 2,
                                        "patience": 2, "word_ngrams": 2, "buckets": 20000},
                {"train": (train_text.encode(), "text/plain"),
                 "validation": (valid_text.encode(), "text/plain")}, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    assert found["validation:accuracy"] > 0.95
    model = load(model_dir(s3, job, tmp_path / "model"))

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "blazingtext", job)
    sentences = [line.split(" ", 1)[1] for line in valid_text.splitlines()[:5]]
    body, content_type = invoke(runtime, endpoint, json.dumps(
        {"instances": sentences, "configuration": {"k": 2}}), "application/json")
    answers = json.loads(body)
    assert content_type == "application/json" and len(answers) == 5
    assert [a["label"][0] for a in answers] == valid_labels[:5]
    assert all(len(a["prob"]) == 2 and a["prob"][0] >= a["prob"][1] for a in answers)
    direct = json.loads(model.invoke(json.dumps({"instances": sentences}).encode(),
                                     "application/json")[0])
    assert [a["prob"][0] for a in direct] == pytest.approx([a["prob"][0] for a in answers])
    lines = invoke(runtime, endpoint, "\n".join(json.dumps({"source": s}) for s in sentences),
                   "application/jsonlines", "application/jsonlines")[0].decode().splitlines()
    assert [json.loads(line)["label"] for line in lines] == [[label] for label in
                                                             valid_labels[:5]]
    with pytest.raises(runtime.exceptions.ModelError, match="k must be"):
        invoke(runtime, endpoint, json.dumps({"instances": ["a"], "configuration": {"k": 0}}),
               "application/json")


def test_blazingtext_bad_input_fails_the_job_naming_the_line(sm, s3):
    text = "__label__a good words here\nno label on this line\n"
    job = train(sm, s3, "blazingtext", {"mode": "supervised", "min_count": 1},
                {"train": (text.encode(), "text/plain")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "line 2" in job["FailureReason"] and "label" in job["FailureReason"]
    job = train(sm, s3, "blazingtext", {"mode": "skipgram", "min_count": 50},
                {"train": (b"too few words\n", "text/plain")})
    assert job["TrainingJobStatus"] == "Failed" and "min_count" in job["FailureReason"]
    with pytest.raises(sm.exceptions.ClientError, match="text/plain"):
        train(sm, s3, "blazingtext", {"mode": "skipgram"},
              {"train": (b"x\n", "application/x-recordio-protobuf")})
    with pytest.raises(sm.exceptions.ClientError, match="'mode'"):
        train(sm, s3, "blazingtext", {"mode": "glove"}, {"train": (b"x\n", "text/plain")})


def test_sdk_blazingtext_estimator_fits_deploys_predicts_and_transforms(sdk_env):
    """The SDK's documented BlazingText flow: ``image_uris.retrieve("blazingtext")``, a
    generic Estimator with ``set_hyperparameters``, TrainingInput text/plain channels,
    deploy, JSON predictions with ``k``, and a JSON lines batch transform."""
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import JSONSerializer

    from opensage.sdk import fast_polling
    from tests.integration.conftest import ROLE

    session = sagemaker.Session()
    bucket = session.default_bucket()
    image = sagemaker.image_uris.retrieve("blazingtext", session.boto_region_name)
    assert image.endswith("/blazingtext:1")
    train_text, _ = labelled(900, 3)
    valid_text, valid_labels = labelled(100, 4)
    train_uri = session.upload_string_as_file_body(train_text, bucket, "bt/train/data.txt")
    valid_uri = session.upload_string_as_file_body(valid_text, bucket, "bt/valid/data.txt")
    estimator = Estimator(image, ROLE, instance_count=1, instance_type="ml.c5.xlarge",
                          sagemaker_session=session, output_path=f"s3://{bucket}/bt/out")
    estimator.set_hyperparameters(mode="supervised", epochs=10, min_count=1, vector_dim=10,
                                  learning_rate=0.1, word_ngrams=2, buckets=20000)
    with fast_polling(factor=100):
        estimator.fit({"train": TrainingInput(train_uri, content_type="text/plain"),
                       "validation": TrainingInput(valid_uri, content_type="text/plain")},
                      logs=False)
        predictor = estimator.deploy(1, "ml.m5.large", serializer=JSONSerializer())
    sentences = [line.split(" ", 1)[1] for line in valid_text.splitlines()[:4]]
    try:
        answers = json.loads(predictor.predict({"instances": sentences,
                                                "configuration": {"k": 3}}))
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    assert [a["label"][0] for a in answers] == valid_labels[:4]
    assert all(len(a["label"]) == 3 and sum(a["prob"]) == pytest.approx(1, abs=1e-4)
               for a in answers)

    source = session.upload_string_as_file_body(
        "".join(json.dumps({"source": s}) + "\n" for s in sentences), bucket,
        "bt/transform/in/sentences.jsonl")
    transformer = estimator.transformer(1, "ml.m5.large", strategy="MultiRecord",
                                        assemble_with="Line", accept="application/jsonlines",
                                        output_path=f"s3://{bucket}/bt/transform/out")
    with fast_polling(factor=100):
        transformer.transform(source, content_type="application/jsonlines", split_type="Line",
                              wait=True, logs=False)
    out = session.read_s3_file(bucket, "bt/transform/out/sentences.jsonl.out")
    assert [json.loads(line)["label"][0] for line in out.splitlines() if line.strip()] == \
        valid_labels[:4]
