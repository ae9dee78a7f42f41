"""NTM quality against scikit-learn's LatentDirichletAllocation on the same corpus.

Corpus: a synthetic LDA corpus (``--topics`` true topics over ``--vocabulary`` words, each
topic concentrated on its own block of words with a Dirichlet-drawn profile, document mixtures
from Dirichlet(0.1), ``--words`` words per document), split into train and held-out test.

opensage's NTM runs as a training job does (``<builtin-torch python> -m
opensage.algorithms.ntm train`` on a job directory, CSV channels, PYTHONPATH holding only
opensage); scikit-learn's LDA (online variational Bayes) fits the same train matrix. Reported:

* held-out perplexity per word (NTM: ``test:perplexity``, exp of the reconstruction NLL with
  the posterior mean; LDA: ``perplexity()``, exp of its variational bound; both infer each test
  document's mixture from that document);
* topic coherence: mean NPMI of each topic's top-10 word pairs over the test documents;
* topic recovery: mean, over true topics, of the best cosine similarity with a learned topic.

    .venv/bin/python -m benchmarks.bench_ntm [--topics 10] [--vocabulary 500] [--docs 3000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from opensage.runner.environments import Environments, builtin_environment
from opensage.testing import frameworks_dir_for_tests, wheelhouse_for_tests


def corpus(topics: int, vocabulary: int, docs: int, words: int,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    block = vocabulary // topics
    beta = np.full((topics, vocabulary), 1e-3)
    for k in range(topics):
        beta[k, k * block:(k + 1) * block] += rng.dirichlet(np.full(block, 0.5))
    beta /= beta.sum(axis=1, keepdims=True)
    theta = rng.dirichlet(np.full(topics, 0.1), docs)
    counts = np.stack([rng.multinomial(words, t @ beta) for t in theta]).astype(np.float32)
    return counts, beta


def npmi(topic_words: np.ndarray, docs: np.ndarray, top: int = 10) -> float:
    present = docs > 0
    n = len(docs)
    p_word = present.mean(axis=0)
    scores = []
    for row in topic_words:
        best = np.argsort(-row)[:top]
        for i, j in itertools.combinations(best, 2):
            joint = np.logical_and(present[:, i], present[:, j]).sum() / n
            if joint == 0:
                scores.append(-1.0)
                continue
            pmi = np.log(joint / (p_word[i] * p_word[j]))
            scores.append(pmi / -np.log(joint))
    return float(np.mean(scores))


def recovery(topic_words: np.ndarray, truth: np.ndarray) -> float:
    a = topic_words / np.linalg.norm(topic_words, axis=1, keepdims=True)
    b = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    return float((b @ a.T).max(axis=1).mean())


def run_ntm(train: np.ndarray, test: np.ndarray, topics: int,
            hyperparameters: dict[str, str]) -> tuple[dict[str, float], np.ndarray, float]:
    envs = Environments(frameworks_dir_for_tests(), wheelhouse=wheelhouse_for_tests())
    python = envs.python(builtin_environment("builtin-torch"))
    path = envs.opensage_path()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for channel, part in (("train", train), ("test", test)):
            (root / "input/data" / channel).mkdir(parents=True)
            np.savetxt(root / "input/data" / channel / "part.csv", part, delimiter=",",
                       fmt="%d")
        (root / "input/config").mkdir(parents=True)
        (root / "input/config/hyperparameters.json").write_text(json.dumps(hyperparameters))
        (root / "input/config/inputdataconfig.json").write_text(json.dumps(
            {c: {"ContentType": "text/csv", "TrainingInputMode": "File"}
             for c in ("train", "test")}))
        env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(path),
               "OPENSAGE_ML_ROOT": str(root), "SM_NUM_CPUS": str(os.cpu_count() or 1)}
        started = time.perf_counter()
        done = subprocess.run([str(python), "-m", "opensage.algorithms.ntm", "train"],
                              env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"NTM failed:\n{done.stdout}\n{done.stderr}")
        found: dict[str, float] = {}
        for line in done.stdout.splitlines():
            if line.startswith("#quality_metric") and ", test " in line:
                name = line.split(", test ", 1)[1].split(" ", 1)[0]
                found[name] = float(line.rsplit("=", 1)[1])
        dump = root / "topics.npy"
        subprocess.run([str(python), "-c", (
            "import sys, numpy, torch\n"
            "from opensage.algorithms.ntm.serve import load\n"
            "m = load(sys.argv[1]).model\n"
            "with torch.no_grad(): numpy.save(sys.argv[2], m.topic_words().numpy())"),
            str(root / "model"), str(dump)], env=env, check=True)
        return found, np.load(dump), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--vocabulary", type=int, default=500)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    from sklearn.decomposition import LatentDirichletAllocation

    counts, truth = corpus(args.topics, args.vocabulary, args.docs, args.words)
    split = int(len(counts) * 0.8)
    train, test = counts[:split], counts[split:]
    hps = {"feature_dim": str(args.vocabulary), "num_topics": str(args.topics),
           "epochs": str(args.epochs), "optimizer": "adam", "learning_rate": "0.01",
           "mini_batch_size": "64", "tolerance": "1e-6", "num_patience_epochs": "10"}
    found, ntm_topics, ntm_seconds = run_ntm(train, test, args.topics, hps)
    started = time.perf_counter()
    lda = LatentDirichletAllocation(args.topics, learning_method="online", random_state=0,
                                    max_iter=20).fit(train)
    lda_seconds = time.perf_counter() - started
    lda_topics = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
    print(f"corpus: {args.topics} topics, vocabulary {args.vocabulary}, {len(train)} train / "
          f"{len(test)} test documents of {args.words} words; NTM {args.epochs} epochs")
    print("| model | held-out perplexity | NPMI (top 10) | topic recovery (cosine) | fit s |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| opensage NTM | {found['perplexity']:.1f} | {npmi(ntm_topics, test):.3f} | "
          f"{recovery(ntm_topics, truth):.3f} | {ntm_seconds:.1f} (process) |")
    print(f"| sklearn LDA | {lda.perplexity(test):.1f} | {npmi(lda_topics, test):.3f} | "
          f"{recovery(lda_topics, truth):.3f} | {lda_seconds:.1f} |")
    print(f"| true topics | | {npmi(truth, test):.3f} | 1.000 | |")


if __name__ == "__main__":
    main()
