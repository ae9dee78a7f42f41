"""LDA quality and time: opensage's LDA (``opensage.algorithms.lda.topics.fit``, the function a
training job runs, with the job's defaults: alpha0 1, 10 restarts, 1000 iterations, tol 1e-8)
against scikit-learn's ``LatentDirichletAllocation`` (batch variational Bayes, its defaults) on
the same corpora:

* ``synthetic``: documents drawn from an LDA model (k = 10, V = 500, alpha 0.1);
* ``docstrings``: the docstrings of the Python standard library's modules, functions and
  classes (one document each, lower-cased words of 3+ letters, stop words and words in
  fewer than 5 documents dropped): real text that every machine has;
* ``--corpus FILE``: any file with one document per line (e.g. gensim's
  ``test_data/lee_background.cor``).

Both models are scored by the same evaluator: held-out per-word log-likelihood bound
(``per_word_bound``, the ``test:pwll`` a job logs) and perplexity exp(-pwll), on 20 % of the
documents; and UMass topic coherence of each topic's 10 top words over the training documents
(higher is better).

    .venv/bin/python -m benchmarks.bench_lda [--topics 10] [--corpus FILE]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
import time
import warnings
from collections import Counter

import numpy as np
import scipy.sparse as sp

STOP = frozenset({"the", "and", "for", "that", "with", "this", "are", "from", "not", "will",
    "can", "which", "have", "has", "was", "were", "but", "its", "into", "than", "then",
    "when", "there", "their", "them", "they", "these", "those", "been", "being", "also",
    "such", "any", "all", "may", "must", "should", "would", "could", "other", "more", "most",
    "some", "only", "each", "used", "use", "using", "return", "returns", "value", "values",
    "none", "true", "false", "object", "objects", "function", "functions", "class", "classes",
    "method", "methods", "argument", "arguments", "default", "given", "see", "new", "one",
    "two", "does", "what", "how", "who", "why", "where", "you", "your", "our", "out", "get",
    "set", "like", "just", "way", "per", "via"})


def synthetic(rng: np.random.Generator) -> sp.csr_matrix:
    k, v, d = 10, 500, 2000
    beta = rng.dirichlet(np.full(v, 0.05), size=k)
    theta = rng.dirichlet(np.full(k, 0.1), size=d)
    x = np.stack([rng.multinomial(n, t @ beta) for n, t in
                  zip(rng.poisson(60, size=d) + 10, theta)])
    return sp.csr_matrix(x, dtype=np.float64)


def tokenize(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in STOP]


def docstrings() -> list[list[str]]:
    docs: list[list[str]] = []
    seen: set[int] = set()
    names = sorted(m.name for m in pkgutil.iter_modules() if not m.name.startswith("_")
                   and m.module_finder.path.startswith(sys.base_prefix))  # type: ignore[union-attr]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            if name in ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"):
                continue
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - optional stdlib parts may be missing
                continue
            for obj in [module, *(v for _, v in inspect.getmembers(module))]:
                doc = inspect.getdoc(obj) if (inspect.ismodule(obj) or inspect.isclass(obj)
                                              or inspect.isfunction(obj)) else None
                if doc and id(doc) not in seen:
                    seen.add(id(doc))
                    words = tokenize(doc)
                    if len(words) >= 15:
                        docs.append(words)
    return docs


def vectorize(docs: list[list[str]], min_df: int = 5) -> tuple[sp.csr_matrix, list[str]]:
    df = Counter(w for d in docs for w in set(d))
    vocab = sorted(w for w, c in df.items() if c >= min_df and c <= 0.5 * len(docs))
    index = {w: i for i, w in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for r, d in enumerate(docs):
        for w, c in Counter(w for w in d if w in index).items():
            rows.append(r)
            cols.append(index[w])
            vals.append(c)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float64)
    keep = np.asarray(x.sum(axis=1)).ravel() >= 5
    return x[keep], vocab


def umass(beta: np.ndarray, x: sp.csr_matrix, top: int = 10) -> float:
    present = (x > 0).astype(np.float64).tocsc()
    scores = []
    for row in beta:
        words = np.argsort(row)[::-1][:top]
        cols = present[:, words]
        co = np.asarray((cols.T @ cols).todense())
        total = 0.0
        for m in range(1, len(words)):
            for ell in range(m):
                total += np.log((co[m, ell] + 1.0) / max(co[ell, ell], 1.0))
        scores.append(total)
    return float(np.mean(scores))


def compare(name: str, x: sp.csr_matrix, k: int, seed: int = 0) -> None:
    from sklearn.decomposition import LatentDirichletAllocation

    from opensage.algorithms.lda.topics import LdaModel, fit, per_word_bound

    rng = np.random.default_rng(seed)
    order = rng.permutation(x.shape[0])
    cut = int(0.8 * len(order))
    train, test = x[order[:cut]], x[order[cut:]]
    start = time.perf_counter()
    ours = fit(train, k, alpha0=1.0, restarts=10, iterations=1000, tol=1e-8,
               batch=train.shape[0], seed=seed)
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    reference = LatentDirichletAllocation(k, learning_method="batch", random_state=seed).fit(train)
    ref_time = time.perf_counter() - start
    ref_model = LdaModel(alpha=np.full(k, 1.0 / k), beta=reference.components_
                         / reference.components_.sum(axis=1, keepdims=True))
    print(f"## {name}: {x.shape[0]} documents, vocabulary {x.shape[1]}, "
          f"{int(x.sum())} words, k = {k}")
    print("| model | fit s | held-out pwll | perplexity | UMass coherence |")
    print("|---|---|---|---|---|")
    for label, model, seconds in (("opensage lda", ours, ours_time),
                                  ("sklearn LatentDirichletAllocation", ref_model, ref_time)):
        pwll = per_word_bound(test, model)
        print(f"| {label} | {seconds:.2f} | {pwll:.4f} | {np.exp(-pwll):.1f} | "
              f"{umass(model.beta, train):.2f} |")
    print(f"| sklearn's own perplexity() for its model | | | "
          f"{reference.perplexity(test):.1f} | |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--corpus", help="a file with one document per line")
    args = parser.parse_args()
    compare("synthetic (drawn from LDA)", synthetic(np.random.default_rng(0)), args.topics)
    x, _ = vectorize(docstrings())
    compare("Python standard library docstrings", x, args.topics)
    if args.corpus:
        with open(args.corpus, encoding="utf-8", errors="replace") as f:
            x, _ = vectorize([tokenize(line) for line in f if line.strip()], min_df=3)
        compare(args.corpus.rsplit("/", 1)[-1], x, args.topics)


if __name__ == "__main__":
    main()
