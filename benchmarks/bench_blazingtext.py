"""BlazingText quality and speed: opensage's NumPy Word2Vec and supervised classifier (the
functions a training job runs) against gensim's ``Word2Vec`` and fastText's Python package,
same corpora, same hyperparameters, 2 threads for the references (opensage's code is NumPy on
one process; BLAS threads as the machine gives).

* Word2Vec on a corpus drawn from known word vectors (words co-occur by latent cosine):
  Spearman's rho of each model's cosines with the true similarities, and words/s;
  also gensim's ``lee_background.cor`` with WS-353 (``wordsim353.tsv``) when ``--gensim-data``
  points at gensim's ``test/test_data`` (a 60k-word corpus: every model's rho is small there).
* Supervised: the docstrings of 12 standard-library packages, labelled by package
  (80/20 split): held-out accuracy and words/s.

gensim and fasttext are not opensage dependencies: run this with an interpreter that has
them and opensage's source on the path, e.g.
``PYTHONPATH=src /tmp/venv/bin/python -m benchmarks.bench_blazingtext --sentences 20000
--gensim-data DIR`` (RESULTS.md: 20,000 sentences; DIR is gensim's ``test/test_data``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

PACKAGES = ("asyncio", "email", "http", "json", "logging", "multiprocessing", "unittest",
            "xml", "urllib", "importlib", "concurrent", "collections")


def synthetic(sentences: int, seed: int = 0) -> tuple[list[list[str]], np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab, k = 2000, 20
    z = rng.normal(size=(vocab, k))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    freq = 1.0 / np.arange(1, vocab + 1) ** 0.8
    out = []
    for _ in range(sentences):
        p = freq * np.exp(z @ (rng.normal(size=k) * 2.5))
        out.append([f"w{i}" for i in rng.choice(vocab, size=15, p=p / p.sum())])
    return out, z


def truth_rho(lookup, z: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    truth, ours = [], []
    for a, b in rng.integers(0, len(z), size=(3000, 2)):
        va, vb = lookup(f"w{a}"), lookup(f"w{b}")
        if a == b or va is None or vb is None:
            continue
        truth.append(z[a] @ z[b])
        ours.append(float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb))))
    return float(spearmanr(truth, ours).statistic)


def ws353_rho(path: Path, lookup) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from opensage.algorithms.blazingtext.text import word_similarity

    rho, used, _ = word_similarity(path, lookup)
    return rho, used


def word2vec_rows(sentences: list[list[str]], z: np.ndarray | None, ws353: Path | None,
                  name: str, dim: int, epochs: int) -> None:
    from gensim.models import Word2Vec

    from opensage.algorithms.blazingtext import word2vec
    from opensage.algorithms.blazingtext.text import Subwords, Vocabulary

    tokens = sum(len(s) for s in sentences)
    print(f"\n## Word2Vec, {name}: {len(sentences)} sentences, {tokens} tokens, dim {dim}, "
          f"window 5, 5 negatives, {epochs} epochs, sample 1e-3")
    print("| mode | implementation | words/s | rho |")
    print("|---|---|---|---|")
    for mode, lr in (("skipgram", 0.025), ("cbow", 0.05), ("batch_skipgram", 0.025)):
        vocab = Vocabulary.build(sentences, 5)
        result = word2vec.train(sentences, vocab, Subwords(vocab.words, 3, 6, 1, False),
                                mode=mode, dim=dim, window=5, negative=5, epochs=epochs,
                                learning_rate=lr, sampling_threshold=1e-3)
        index = {w: i for i, w in enumerate(vocab.words)}

        def ours(word: str, index=index, v=result.word_vectors):  # type: ignore[no-untyped-def]
            i = index.get(word)
            return None if i is None else v[i]

        rho = truth_rho(ours, z) if z is not None else ws353_rho(ws353, ours)[0]
        print(f"| {mode} | opensage (NumPy) | {result.words_per_second:,.0f} | {rho:.4f} |",
              flush=True)
        if mode == "batch_skipgram":
            continue
        start = time.perf_counter()
        model = Word2Vec(sentences, vector_size=dim, window=5, negative=5, epochs=epochs,
                         min_count=5, sg=int(mode == "skipgram"), workers=2, sample=1e-3,
                         alpha=lr, seed=1)
        speed = tokens * epochs / (time.perf_counter() - start)

        def theirs(word: str, wv=model.wv):  # type: ignore[no-untyped-def]
            return wv.get_vector(word) if word in wv else None

        rho = truth_rho(theirs, z) if z is not None else ws353_rho(ws353, theirs)[0]
        print(f"| {mode} | gensim 4.4 (2 workers) | {speed:,.0f} | {rho:.4f} |", flush=True)
        try:
            import fasttext
        except ImportError:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write("\n".join(" ".join(s) for s in sentences) + "\n")
            f.flush()
            start = time.perf_counter()
            try:
                # fastText's subwords stay on (minn 3, maxn 6): this build (fasttext-numpy2
                # 0.10) stops with "Encountered NaN" on 2 threads when they are off
                ft = fasttext.train_unsupervised(f.name, model=mode, dim=dim, ws=5, neg=5,
                                                 epoch=epochs, minCount=5, t=1e-3, lr=lr,
                                                 thread=2, verbose=0)
            except RuntimeError as e:  # fastText 0.9 stops on "Encountered NaN" here
                print(f"| {mode} | fastText 0.9 (2 threads) | failed: {e} | |", flush=True)
                continue
            speed = tokens * epochs / (time.perf_counter() - start)
        words = set(ft.words)

        def fast(word: str, ft=ft, words=words):  # type: ignore[no-untyped-def]
            return ft.get_word_vector(word) if word in words else None

        rho = truth_rho(fast, z) if z is not None else ws353_rho(ws353, fast)[0]
        print(f"| {mode} | fastText (2 threads, subwords on) | {speed:,.0f} | {rho:.4f} |",
              flush=True)


def docstring_dataset() -> list[tuple[str, list[str]]]:
    out = []
    seen: set[int] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for package in PACKAGES:
            root = importlib.import_module(package)
            modules = [root]
            for info in pkgutil.walk_packages(root.__path__, package + "."):
                if info.name.endswith("__main__"):
                    continue  # importing it runs the package's command line
                try:
                    modules.append(importlib.import_module(info.name))
                except Exception:  # noqa: BLE001, S112 - optional parts may be missing
                    continue
            for module in modules:
                for _, obj in inspect.getmembers(module):
                    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                        continue
                    if not getattr(obj, "__module__", "").startswith(package):
                        continue
                    doc = inspect.getdoc(obj)
                    if doc and id(obj) not in seen:
                        seen.add(id(obj))
                        words = re.findall(r"[a-z]+", doc.lower())
                        if len(words) >= 5:
                            out.append((package, words))
    return out


def supervised_rows(epochs: int) -> None:
    from opensage.algorithms.blazingtext import classify
    from opensage.algorithms.blazingtext.text import Vocabulary

    data = docstring_dataset()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    cut = int(0.8 * len(data))
    train = [data[i] for i in order[:cut]]
    test = [data[i] for i in order[cut:]]
    print(f"\n## Supervised: stdlib docstrings by package ({len(PACKAGES)} labels), "
          f"{len(train)} train / {len(test)} test, dim 100, word_ngrams 2, lr 0.5, "
          f"{epochs} epochs, min_count 1")
    print("| implementation | words/s | held-out accuracy |")
    print("|---|---|---|")
    sentences = [w for _, w in train]
    labels = [[f"__label__{p}"] for p, _ in train]
    vocab = Vocabulary.build([*sentences, *([["</s>"]] * len(sentences))], 1)
    model, speed = classify.train(sentences, labels, vocab.words, dim=100, epochs=epochs,
                                  learning_rate=0.5, word_ngrams=2, buckets=2000000)
    accuracy = classify.model_accuracy(model, [w for _, w in test],
                                       [[f"__label__{p}"] for p, _ in test])
    print(f"| opensage (NumPy) | {speed:,.0f} | {accuracy:.4f} |", flush=True)
    try:
        import fasttext
    except ImportError:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text("".join(f"__label__{p} {' '.join(w)}\n" for p, w in train))
        start = time.perf_counter()
        ft = fasttext.train_supervised(str(path), dim=100, epoch=epochs, lr=0.5, wordNgrams=2,
                                       minCount=1, thread=2, verbose=0)
        speed = sum(len(w) for _, w in train) * epochs / (time.perf_counter() - start)
        hits = sum(ft.predict(" ".join(w))[0][0] == f"__label__{p}" for p, w in test)
    print(f"| fastText 0.9 (2 threads) | {speed:,.0f} | {hits / len(test):.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=40000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--gensim-data", type=Path)
    parser.add_argument("--supervised-only", action="store_true")
    args = parser.parse_args()
    if args.supervised_only:
        supervised_rows(10)
        return
    sentences, z = synthetic(args.sentences)
    word2vec_rows(sentences, z, None, "drawn from known vectors (truth = latent cosine)", 50,
                  args.epochs)
    if args.gensim_data:
        lee = [line.lower().split() for line in
               (args.gensim_data / "lee_background.cor").read_text().splitlines()]
        word2vec_rows(lee, None, args.gensim_data / "wordsim353.tsv",
                      "gensim's lee_background.cor, rho on WS-353 pairs in vocabulary", 100,
                      10)
    supervised_rows(10)


if __name__ == "__main__":
    main()
