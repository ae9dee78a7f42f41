"""Training for the IP Insights built-in: read the CSV channels, fit, score, save
``model_algo-1``.

Logs ``#quality_metric: host=algo-1, epoch=N, train binary_classification_cross_entropy
<loss>=...`` per epoch and, with a validation channel, ``validation discriminator_auc
<score>=...`` (per epoch and at the end).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import log_metric, save_model
from opensage.algorithms.ipinsights.data import read_pairs
from opensage.algorithms.ipinsights.model import (
    Model,
    discriminator_auc,
    fit,
    hash_entities,
)
from opensage.algorithms.ipinsights.spec import NAME, SPEC


def _channel(env: TrainingEnv, name: str, buckets: int) -> tuple[NDArray[Any], NDArray[Any]]:
    location = env.channel_data(name)
    if not location.exists():
        raise UserError(f"No data in the {name} channel (input/data/{name}).")
    entities, ips = read_pairs(location)
    if not len(ips):
        raise UserError(f"No records in the {name} channel.")
    return hash_entities(entities, buckets), ips


def train(env: TrainingEnv) -> None:
    hps = SPEC.validate(env.hyperparameters, env.input_data_config, fill_defaults=True)
    n_vectors = hps["num_entity_vectors"]
    buckets, ips = _channel(env, "train", n_vectors)
    validation = (_channel(env, "validation", n_vectors)
                  if "validation" in env.input_data_config else None)
    rates = {"random_rate": hps["random_negative_sampling_rate"],
             "shuffled_rate": hps["shuffled_negative_sampling_rate"]}
    print(f"Training IP Insights: {len(ips)} records, {len(np.unique(buckets))} entity "
          f"buckets used of {n_vectors}, vector_dim {hps['vector_dim']}.", flush=True)
    interval = hps["batch_metrics_publish_interval"]

    def on_batch(epoch: int, batch: int, loss: float) -> None:
        if batch % interval == 0:
            print(f"Epoch[{epoch}] Batch[{batch}] binary_classification_cross_entropy="
                  f"{loss:.6f}", flush=True)

    def on_epoch(epoch: int, loss: float, model: Model) -> None:
        log_metric("train", "binary_classification_cross_entropy", loss, loss=True,
                   epoch=epoch)
        if validation is not None:
            log_metric("validation", "discriminator_auc",
                       discriminator_auc(model, *validation, **rates), loss=False, epoch=epoch)

    model = fit(buckets, ips, num_entity_vectors=n_vectors, vector_dim=hps["vector_dim"],
                epochs=hps["epochs"], learning_rate=hps["learning_rate"],
                batch_size=hps["mini_batch_size"], encoder_layers=hps["num_ip_encoder_layers"],
                weight_decay=hps["weight_decay"], on_epoch=on_epoch, on_batch=on_batch,
                **rates)
    if validation is not None:
        log_metric("validation", "discriminator_auc",
                   discriminator_auc(model, *validation, **rates), loss=False)
    arrays = {"entities": model.entities.astype(np.float32), "seen": model.seen,
              "oov": model.oov.astype(np.float32),
              "ip_table": model.ip_table.astype(np.float32),
              "sizes": np.asarray(model.sizes, dtype=np.int64)}
    for j, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        arrays[f"layer{j}_weight"] = w.astype(np.float32)
        arrays[f"layer{j}_bias"] = b.astype(np.float32)
    save_model(env.model_dir, arrays,
               {"algorithm": NAME, "num_entity_vectors": n_vectors,
                "vector_dim": hps["vector_dim"], "layers": len(model.weights)})
