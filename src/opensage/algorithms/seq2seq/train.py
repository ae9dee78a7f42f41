"""Training for the seq2seq built-in: RecordIO-protobuf token-id pairs and the vocabularies in,
``model_algo-1`` (safetensors) plus ``vocab.src.json``/``vocab.trg.json`` out.

At each checkpoint (every ``checkpoint_frequency_num_batches`` batches and at each epoch's end)
the validation channel is scored and logged in the containers' format, ``#quality_metric:
host=algo-1, epoch=N, validation perplexity <loss>=...`` (and ``accuracy``; ``bleu`` from beam
search on the first ``bleu_sample_size`` sentences, -1 all, 0 none unless ``optimized_metric`` is
bleu, then all; the final scores the same); the model best in ``optimized_metric`` is kept, and
training stops after ``checkpoint_threshold`` checkpoints without improvement (not before
``min_num_epochs``), at ``max_num_epochs`` or ``max_num_batches``."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from opensage.algorithms.contract import TrainingEnv, UserError
from opensage.algorithms.firstparty.training import log_metric
from opensage.algorithms.seq2seq.bleu import corpus_bleu
from opensage.algorithms.seq2seq.data import BOS, EOS, pad, read_pairs, read_vocabularies
from opensage.algorithms.seq2seq.model import Seq2Seq
from opensage.algorithms.seq2seq.spec import NAME, SPEC
from opensage.algorithms.torchsupport import Checkpoints, save_model, setup

Pairs = list[tuple[Any, Any]]


def model_config(hps: dict[str, Any], source_vocab: int, target_vocab: int) -> dict[str, Any]:
    hidden = hps["rnn_num_hidden"]
    if hidden % 2:
        raise UserError(f"rnn_num_hidden must be even (the bidirectional encoder splits it "
                        f"over two directions), not {hidden}.")
    attention_hidden = hps["rnn_attention_num_hidden"]
    return {"source_vocab": source_vocab, "target_vocab": target_vocab, "hidden": hidden,
            "cell": hps["rnn_cell_type"], "encoder_layers": hps["num_layers_encoder"],
            "decoder_layers": hps["num_layers_decoder"], "embed_source": hps["num_embed_source"],
            "embed_target": hps["num_embed_target"], "attention": hps["rnn_attention_type"],
            "attention_hidden": hidden if attention_hidden == "auto" else attention_hidden,
            "state_init": hps["rnn_decoder_state_init"],
            "embed_dropout_source": hps["embed_dropout_source"],
            "embed_dropout_target": hps["embed_dropout_target"],
            "decoder_hidden_dropout": hps["rnn_decoder_hidden_dropout"],
            "max_seq_len_source": hps["max_seq_len_source"],
            "max_seq_len_target": hps["max_seq_len_target"]}


def _batch(pairs: Pairs, bos: int, eos: int, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    source = pad([s for s, _ in pairs])
    target_in = pad([np.concatenate([[bos], t]) for _, t in pairs])
    target_out = pad([np.concatenate([t, [eos]]) for _, t in pairs])
    return (torch.as_tensor(source, device=device), torch.as_tensor(target_in, device=device),
            torch.as_tensor(target_out, device=device))


def _init_weights(model: Seq2Seq, hps: dict[str, Any]) -> None:
    for name, p in model.named_parameters():
        if p.dim() < 2 or "embed" in name:
            continue
        if hps["weight_init_type"] == "uniform":
            torch.nn.init.uniform_(p, -hps["weight_init_scale"] / 10, hps["weight_init_scale"] / 10)
        else:
            fan_out, fan_in = p.shape[0], p.shape[1]
            fan = {"in": fan_in, "out": fan_out, "avg": (fan_in + fan_out) / 2}[
                hps["xavier_factor_type"]]
            bound = math.sqrt(hps["weight_init_scale"] / fan)
            torch.nn.init.uniform_(p, -bound, bound)


def evaluate(model: Seq2Seq, pairs: Pairs, hps: dict[str, Any], bos: int, eos: int,
             device: torch.device, bleu_sample: int) -> dict[str, float]:
    model.eval()
    loss = correct = tokens = 0.0
    with torch.no_grad():
        for start in range(0, len(pairs), hps["batch_size"]):
            source, target_in, target_out = _batch(pairs[start:start + hps["batch_size"]],
                                                   bos, eos, device)
            logits = model(source, target_in)
            mask = target_out != 0
            loss += float(torch.nn.functional.cross_entropy(
                logits[mask], target_out[mask], reduction="sum"))
            correct += float((logits.argmax(dim=2)[mask] == target_out[mask]).sum())
            tokens += float(mask.sum())
        found = {"perplexity": math.exp(min(loss / tokens, 50.0)), "accuracy": correct / tokens}
        if bleu_sample:
            sample = pairs if bleu_sample < 0 else pairs[:bleu_sample]
            hypotheses = [model.beam_search(s.tolist(), hps["beam_size"],
                                            hps["max_seq_len_target"], bos, eos)[0]
                          for s, _ in sample]
            found["bleu"] = corpus_bleu(hypotheses, [t.tolist() for _, t in sample])
    model.train()
    return found


def train(env: TrainingEnv) -> None:
    hps, _formats = SPEC.validate_job(env.hyperparameters, env.input_data_config,
                                      fill_defaults=True)
    for key in ("encoder_type", "decoder_type"):
        if hps[key] != "rnn":
            raise UserError(f"{key} {hps[key]}: opensage's seq2seq has RNN encoders and "
                            f"decoders only; use {key} rnn.")
    device = setup(env)
    source_vocab, target_vocab = read_vocabularies(env.channel_data("vocab"))
    bos, eos = target_vocab[BOS], target_vocab[EOS]
    config = model_config(hps, len(source_vocab), len(target_vocab))
    sizes = (len(source_vocab), len(target_vocab), hps["max_seq_len_source"],
             hps["max_seq_len_target"])
    train_pairs = read_pairs(env.channel_data("train"), "train", *sizes)
    validation = read_pairs(env.channel_data("validation"), "validation", *sizes)
    model = Seq2Seq(config).to(device)
    _init_weights(model, hps)
    kwargs: dict[str, Any] = {"lr": hps["learning_rate"], "weight_decay": hps["weight_decay"]}
    if hps["optimizer_type"] == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), momentum=hps.get("momentum") or 0.0, **kwargs)
    elif hps["optimizer_type"] == "rmsprop":
        optimizer = torch.optim.RMSprop(model.parameters(), **kwargs)
    else:
        optimizer = torch.optim.Adam(model.parameters(), **kwargs)
    metric = hps["optimized_metric"]
    sign = -1.0 if metric == "perplexity" else 1.0
    bleu_sample = hps["bleu_sample_size"] or (-1 if metric == "bleu" else 0)
    checkpoints = Checkpoints(env, {k: v for k, v in hps.items()
                                    if k not in ("max_num_epochs", "max_num_batches")})
    state: dict[str, Any] = {"best": None, "stale": 0, "checkpoints": 0, "batches": 0}
    start = checkpoints.resume(model, optimizer, state)
    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    print(f"Training seq2seq: {len(train_pairs)} pairs, vocabularies {len(source_vocab)}/"
          f"{len(target_vocab)}, {hps['rnn_cell_type']} {hps['rnn_num_hidden']} with "
          f"{hps['rnn_attention_type']} attention, device {device}.", flush=True)
    rng = np.random.default_rng(start)
    size = hps["batch_size"]
    max_epochs = hps.get("max_num_epochs") or 1_000_000
    since_checkpoint = 0
    stop = False
    epoch = start
    for epoch in range(start, max_epochs):
        order = rng.permutation(len(train_pairs))
        model.train()
        loss_sum = token_sum = 0.0
        for begin in range(0, len(order), size):
            source, target_in, target_out = _batch([train_pairs[i] for i in
                                                    order[begin:begin + size]], bos, eos, device)
            logits = model(source, target_in)
            mask = target_out != 0
            loss = torch.nn.functional.cross_entropy(logits[mask], target_out[mask])
            optimizer.zero_grad()
            loss.backward()
            if hps["clip_gradient"] > 0:
                torch.nn.utils.clip_grad_value_(model.parameters(), hps["clip_gradient"])
            optimizer.step()
            n = float(mask.sum())
            loss_sum += float(loss) * n
            token_sum += n
            state["batches"] += 1
            since_checkpoint += 1
            last = begin + size >= len(order)
            limit = 0 < hps["max_num_batches"] <= state["batches"]
            if since_checkpoint >= hps["checkpoint_frequency_num_batches"] or last or limit:
                since_checkpoint = 0
                stop = _checkpoint(model, validation, hps, bos, eos, device, bleu_sample,
                                   state, epoch, metric, sign, optimizer, best_weights) or limit
                if stop and epoch + 1 < hps["min_num_epochs"] and not limit:
                    stop = False
                if stop:
                    break
        log_metric("train", "perplexity", math.exp(min(loss_sum / max(token_sum, 1.0), 50.0)),
                   loss=True, epoch=epoch)
        checkpoints.save(model, optimizer, epoch + 1, state)
        if stop:
            print(f"Stopping after epoch {epoch}: validation {metric} did not improve for "
                  f"{hps['checkpoint_threshold']} checkpoints (or a batch limit was reached).",
                  flush=True)
            break
    model.load_state_dict(best_weights)
    # bleu_sample_size 0 decodes nothing (SageMaker: the number of validation instances decoded
    # for BLEU; -1 all) unless bleu is the optimized metric (then all, as Sockeye's
    # --decode-and-evaluate): the final scores beam-search no more than the checkpoints did
    final = evaluate(model, validation, hps, bos, eos, device, bleu_sample)
    for name, value in final.items():
        log_metric("validation", name, value, loss=name == "perplexity")
    save_model(env.model_dir, model.state_dict(), {"algorithm": NAME, "config": config,
                                                       "beam_size": hps["beam_size"]})
    for name, vocab in (("vocab.src.json", source_vocab), ("vocab.trg.json", target_vocab)):
        (env.model_dir / name).write_text(json.dumps(vocab), encoding="utf-8")


def _checkpoint(model: Seq2Seq, validation: Pairs, hps: dict[str, Any], bos: int, eos: int,
                device: torch.device, bleu_sample: int, state: dict[str, Any], epoch: int,
                metric: str, sign: float, optimizer: torch.optim.Optimizer,
                best_weights: dict[str, torch.Tensor]) -> bool:
    """Score the validation channel, keep the best model, adjust the learning rate; whether
    to stop."""
    found = evaluate(model, validation, hps, bos, eos, device, bleu_sample)
    for name, value in found.items():
        log_metric("validation", name, value, loss=name == "perplexity", epoch=epoch)
    state["checkpoints"] += 1
    value = sign * found.get(metric, found["perplexity"] if metric == "bleu" else 0.0)
    if state["best"] is None or value > state["best"]:
        state["best"], state["stale"] = value, 0
        best_weights.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    else:
        state["stale"] += 1
    scheduler = hps["lr_scheduler_type"]
    for group in optimizer.param_groups:
        if scheduler == "plateau_reduce":
            if state["stale"] and state["stale"] % hps["plateau_reduce_lr_threshold"] == 0:
                group["lr"] *= hps["plateau_reduce_lr_factor"]
        else:
            t = state["checkpoints"] / hps["fixed_rate_lr_half_life"]
            group["lr"] = hps["learning_rate"] / ((1 + t) if scheduler == "fixed_rate_inv_t"
                                                  else math.sqrt(1 + t))
    return bool(state["stale"] >= hps["checkpoint_threshold"])
