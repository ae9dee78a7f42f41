"""Corpus BLEU-4 (Papineni et al.: clipped n-gram precisions, geometric mean, brevity penalty)
on token sequences, in [0, 1] as Sockeye (SageMaker's seq2seq) reports ``bleu``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def corpus_bleu(hypotheses: Sequence[Sequence[object]], references: Sequence[Sequence[object]],
                max_n: int = 4) -> float:
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_n + 1):
            h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if hyp_len == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)
