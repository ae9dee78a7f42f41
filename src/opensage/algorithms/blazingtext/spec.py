"""BlazingText's hyperparameters, channels and metrics, as ``blazingtext:1`` declares them.

One declaration covers both of SageMaker's hyperparameter tables (Word2Vec and text
classification share names: ``epochs``, ``learning_rate``, ``min_count``, ``vector_dim``,
``buckets``); a hyperparameter of the other mode is accepted and has no effect, as in
SageMaker. Tunable ranges are SageMaker's tuning page's: Word2Vec ``batch_size``,
``epochs``, ``learning_rate``, ``min_count``, ``negative_samples``, ``sampling_threshold``,
``vector_dim``, ``window_size``; text classification ``buckets``, ``epochs``,
``learning_rate``, ``min_count``, ``vector_dim``, ``word_ngrams``. Objectives:
``train:mean_rho`` (Word2Vec, maximise) and ``validation:accuracy`` (text classification,
maximise).

Log lines (the containers' own, not ``#quality_metric``): ``#train_accuracy: 0.97``,
``#validation_accuracy: 0.96``, ``#mean_rho: 0.63`` (the regexes below find them; the
exact regexes SageMaker registers are unverified).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.params import Bool, Choice, Float, Int
from opensage.algorithms.spec import AlgorithmSpec, MetricDefinition

NAME = "blazingtext"
WORD2VEC_MODES = ("cbow", "skipgram", "batch_skipgram")

HYPERPARAMETERS = {
    "mode": Choice([*WORD2VEC_MODES, "supervised"], required=True,
                   description="The Word2vec architecture, or supervised for text "
                               "classification"),
    "batch_size": Int(min=1, max=32, default=11, tunable=True,
                      description="batch_skipgram: the number of words sharing negative "
                                  "samples"),
    "buckets": Int(min=1, default=2000000, tunable=True,
                   description="The number of hash buckets for subwords (Word2Vec) or word "
                               "n-grams (supervised)"),
    "epochs": Int(min=1, default=5, tunable=True,
                  description="The number of complete passes through the training data"),
    "evaluation": Bool(default=True,
                       description="Whether the trained vectors are evaluated on word "
                                   "similarity (WS-353)"),
    "learning_rate": Float(0, None, closed="neither", default=0.05, tunable=True,
                           description="The step size used for parameter updates"),
    "min_char": Int(min=1, default=3, description="The minimum characters of a subword"),
    "max_char": Int(min=1, default=6, description="The maximum characters of a subword"),
    "min_count": Int(min=0, default=5, tunable=True,
                     description="Words that appear less than min_count times are discarded"),
    "negative_samples": Int(min=1, default=5, tunable=True,
                            description="The number of negative samples per positive one"),
    "sampling_threshold": Float(0, 1, closed="neither", default=0.0001, tunable=True,
                                description="The threshold for the down-sampling of frequent "
                                            "words"),
    "subwords": Bool(default=False,
                     description="Whether to learn subword (character n-gram) embeddings"),
    "vector_dim": Int(min=1, default=100, tunable=True,
                      description="The dimension of the word vectors"),
    "window_size": Int(min=1, default=5, tunable=True,
                       description="The size of the context window"),
    "early_stopping": Bool(default=False,
                           description="supervised: stop when validation accuracy stops "
                                       "improving"),
    "min_epochs": Int(min=1, default=5,
                      description="supervised: epochs before early stopping may act"),
    "patience": Int(min=1, default=4,
                    description="supervised: epochs without improvement before stopping"),
    "word_ngrams": Int(min=1, default=2, tunable=True,
                       description="supervised: the number of word n-gram features"),
    "_tuning_objective_metric": Choice(["train:mean_rho", "validation:accuracy"]),
}


def _checks(values: Mapping[str, Any], formats: Mapping[str, str]) -> Iterable[str]:
    low, high = values.get("min_char", 3), values.get("max_char", 6)
    if low > high:
        yield f"Hyperparameter 'min_char' ({low}) must not be greater than 'max_char' ({high})."
    if "validation" in formats and values.get("mode") != "supervised":
        yield "The validation channel is only accepted with mode 'supervised'."
    if values.get("early_stopping") and values.get("mode") == "supervised" and (
            "validation" not in formats) and formats:
        yield "early_stopping needs a validation channel."


TEXT = {"text/plain": "text", "application/x-text": "text"}

CHANNELS = {
    "train": ChannelSpec(required=True, content_types=TEXT, default_content_type="text/plain",
                         input_modes=("File", "FastFile", "Pipe"),
                         description="Text, one sentence per line (supervised: __label__ "
                                     "prefixes)"),
    "validation": ChannelSpec(required=False, content_types=TEXT,
                              default_content_type="text/plain",
                              input_modes=("File", "FastFile", "Pipe"),
                              description="Labelled sentences scored each epoch (supervised)"),
}

METRICS = (
    MetricDefinition("train:mean_rho", r"#mean_rho: (\S+)", "Maximize"),
    MetricDefinition("validation:accuracy", r"#validation_accuracy: (\S+)", "Maximize"),
    MetricDefinition("train:accuracy", r"#train_accuracy: (\S+)", None),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File", "FastFile", "Pipe"),
                     checks=(_checks,), supports_distributed_training=False)
