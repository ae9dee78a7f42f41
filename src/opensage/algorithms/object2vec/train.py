"""Training for the Object2Vec built-in: JSON lines pairs in, ``model_algo-1`` (safetensors)
out. Logs ``#quality_metric: host=algo-1, epoch=N, train loss <loss>=...`` per epoch, the
validation channel's ``accuracy``/``cross_entropy`` (softmax) or ``mean_squared_error``
(regression) per epoch, and the test channel's at the end; stops early when the validation
metric has not improved by ``early_stopping_tolerance`` for ``early_stopping_patience``
epochs; checkpoints each epoch when the job has a checkpoint directory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import log_metric
from opensage.algorithms.object2vec.data import read_pairs
from opensage.algorithms.object2vec.model import Object2Vec
from opensage.algorithms.object2vec.spec import NAME, SPEC
from opensage.algorithms.torchsupport import Checkpoints, save_model, setup

OPTIMIZERS = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
              "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD,
              "adadelta": torch.optim.Adadelta}


def model_config(hps: dict[str, Any]) -> dict[str, Any]:
    shared = hps["enc1_network"] == "enc0"
    config: dict[str, Any] = {
        "enc_dim": hps["enc_dim"], "dropout": hps["dropout"],
        "comparators": list(hps["comparator_list"]), "mlp_layers": hps["mlp_layers"],
        "mlp_dim": hps["mlp_dim"], "mlp_activation": hps["mlp_activation"],
        "num_classes": hps["num_classes"], "output_layer": hps["output_layer"],
        "shared": shared}
    for index in (0, 1):
        e = f"enc{index}"
        source = "enc0" if shared else e
        layers = hps[f"{source}_layers"]
        config.update({
            f"{e}_network": hps[f"{source}_network"],
            f"{e}_vocab_size": hps.get(f"{e}_vocab_size") or hps["enc0_vocab_size"],
            f"{e}_max_seq_len": hps.get(f"{e}_max_seq_len") or hps["enc0_max_seq_len"],
            f"{e}_embed": hps[f"{source}_token_embedding_dim"],
            f"{e}_layers": 2 if layers == "auto" else layers,
            f"{e}_width": hps[f"{source}_cnn_filter_width"]})
    if shared and (config["enc1_vocab_size"] != config["enc0_vocab_size"]):
        raise UserError("enc1_network enc0 shares enc0's encoder: enc1_vocab_size must equal "
                        "enc0_vocab_size (or be left out).")
    return config


def scores(model: Object2Vec, data: Any, regression: bool, size: int,
           device: torch.device) -> dict[str, float]:
    in0, in1, labels = data
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(labels), size):
            outputs.append(model(torch.as_tensor(in0[start:start + size], device=device),
                                 torch.as_tensor(in1[start:start + size], device=device)).cpu())
    out = torch.cat(outputs)
    target = torch.as_tensor(labels)
    if regression:
        return {"mean_squared_error": float(((out[:, 0] - target) ** 2).mean())}
    return {"accuracy": float((out.argmax(dim=1) == target.long()).float().mean()),
            "cross_entropy": float(torch.nn.functional.cross_entropy(out, target.long()))}


def train(env: TrainingEnv) -> None:
    hps, _formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                      fill_defaults=True)
    for e in ("enc0", "enc1"):
        if hps.get(f"{e}_pretrained_embedding_file"):
            raise UserError(f"{e}_pretrained_embedding_file: pretrained embeddings are not "
                            f"supported by opensage's Object2Vec yet; leave it out.")
    device = setup(env)
    config = model_config(hps)
    regression = hps["output_layer"] == "mean_squared_error"
    train_data = read_pairs(env.channel_data("train"), "train", config, regression)
    validation = (read_pairs(env.channel_data("validation"), "validation", config, regression)
                  if "validation" in env.input_data_config else None)
    test = (read_pairs(env.channel_data("test"), "test", config, regression)
            if "test" in env.input_data_config else None)
    model = Object2Vec(config).to(device)
    optimizer = OPTIMIZERS[hps["optimizer"]](model.parameters(), lr=hps["learning_rate"],
                                             weight_decay=hps["weight_decay"])
    checkpoints = Checkpoints(env, {k: v for k, v in hps.items() if k != "epochs"})
    state: dict[str, Any] = {"best": None, "stale": 0}
    start = checkpoints.resume(model, optimizer, state)
    in0, in1, labels = train_data
    size = hps["mini_batch_size"]
    loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
    print(f"Training Object2Vec: {len(labels)} pairs, encoders {config['enc0_network']}/"
          f"{config['enc1_network']}, output {hps['output_layer']}, device {device}.",
          flush=True)
    rng = np.random.default_rng(start)
    metric, better = ("mean_squared_error", -1.0) if regression else ("accuracy", 1.0)
    for epoch in range(start, hps["epochs"]):
        model.train()
        order = rng.permutation(len(labels))
        total = 0.0
        for begin in range(0, len(order), size):
            index = order[begin:begin + size]
            out = model(torch.as_tensor(in0[index], device=device),
                        torch.as_tensor(in1[index], device=device))
            target = torch.as_tensor(labels[index], device=device)
            loss = loss_fn(out[:, 0], target) if regression else loss_fn(out, target.long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(index)
        log_metric("train", "loss", total / len(labels), loss=True, epoch=epoch)
        stop = False
        if validation is not None:
            found = scores(model, validation, regression, size, device)
            for name, value in found.items():
                log_metric("validation", name, value, loss=name != "accuracy", epoch=epoch)
            value = better * found[metric]
            if state["best"] is None or value > state["best"] + hps["early_stopping_tolerance"]:
                state["best"], state["stale"] = value, 0
            else:
                state["stale"] += 1
                stop = state["stale"] >= hps["early_stopping_patience"]
        checkpoints.save(model, optimizer, epoch + 1, state)
        if stop:
            print(f"Stopping early after epoch {epoch}: validation {metric} did not improve "
                  f"by {hps['early_stopping_tolerance']} for "
                  f"{hps['early_stopping_patience']} epochs.", flush=True)
            break
    if validation is not None:
        for name, value in scores(model, validation, regression, size, device).items():
            log_metric("validation", name, value, loss=name != "accuracy")
    if test is not None:
        for name, value in scores(model, test, regression, size, device).items():
            log_metric("test", name, value, loss=name != "accuracy")
    save_model(env.model_dir, model.state_dict(), {"algorithm": NAME, "config": config})
