"""The IP Insights built-in's hyperparameters, channels and metrics, as ``ipinsights:1``
declares them: text/csv only (``entity_id,IPv4 address`` rows, no header, no label), File
mode."""

from __future__ import annotations

from opensage.algorithms.channels import ChannelSpec
from opensage.algorithms.firstparty import quality_metric
from opensage.algorithms.params import Choice, Float, Int
from opensage.algorithms.spec import AlgorithmSpec

NAME = "ipinsights"
CSV_FORMAT = "ipinsights-csv"

HYPERPARAMETERS = {
    "num_entity_vectors": Int(1, 250_000_000, required=True, tunable=True,
                              description="Entity embedding vectors (entity ids are hashed "
                                          "into this many buckets)"),
    "vector_dim": Int(4, 4096, required=True, tunable=True,
                      description="Size of the entity and IP embeddings"),
    "batch_metrics_publish_interval": Int(min=1, default=1000,
                                          description="Batches between progress lines"),
    "epochs": Int(min=1, default=10, tunable=True),
    "learning_rate": Float(1e-6, 10.0, default=0.001, tunable=True),
    "mini_batch_size": Int(1, 500_000, default=10_000, tunable=True),
    "num_ip_encoder_layers": Int(0, 100, default=1, tunable=True),
    "random_negative_sampling_rate": Int(0, 500, default=1, tunable=True),
    "shuffled_negative_sampling_rate": Int(0, 500, default=1, tunable=True),
    "weight_decay": Float(0.0, 10.0, default=0.00001, tunable=True),
    "_tuning_objective_metric": Choice(["validation:discriminator_auc"]),
}


def _csv_channel(required: bool, description: str) -> ChannelSpec:
    return ChannelSpec(required=required, content_types={"text/csv": CSV_FORMAT},
                       default_content_type="text/csv", input_modes=("File",),
                       description=description)


CHANNELS = {
    "train": _csv_channel(True, "entity_id,IPv4 address rows to learn from"),
    "validation": _csv_channel(False, "Rows scored by discriminator AUC"),
}

METRICS = (
    quality_metric("validation", "discriminator_auc", "Maximize"),
)

SPEC = AlgorithmSpec(name=NAME, hyperparameters=HYPERPARAMETERS, channels=CHANNELS,
                     metrics=METRICS, input_modes=("File",),
                     supports_distributed_training=True)
