"""Inference for the seq2seq built-in, as ``seq2seq:1`` answers:

* ``application/json``: ``{"instances": [{"data": "tokens separated by spaces"}, ...]}`` ->
  ``{"predictions": [{"target": "translated tokens"}, ...]}`` (tokens not in vocab.src.json
  read as ``<unk>``); with ``"configuration": {"attention_matrix": "true"}`` each prediction
  also has ``"matrix"``, the attention weights (a row per target token, ``</s>`` included, a
  column per source token);
* ``application/x-recordio-protobuf``: Records with the source token ids as the Int32 features
  ``values`` -> one Record per input with the target ids as the Int32 features ``target``.

Each sentence is decoded by beam search (``beam_size`` of training)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from opensage.algorithms.inference import (
    JSON,
    RECORDIO,
    InferenceError,
    json_instances,
    media_type,
    negotiate,
)
from opensage.algorithms.seq2seq.data import BOS, EOS, UNK, check_vocab
from opensage.algorithms.seq2seq.model import Seq2Seq
from opensage.algorithms.seq2seq.spec import NAME
from opensage.algorithms.torchsupport import load_model

TYPES = (JSON, RECORDIO)


class Seq2SeqModel:
    def __init__(self, model: Seq2Seq, config: dict[str, Any], beam: int,
                 source_vocab: dict[str, int], target_vocab: dict[str, int]) -> None:
        self.model = model.eval()
        self.config = config
        self.beam = beam
        self.source_vocab = source_vocab
        self.target_words = {i: w for w, i in target_vocab.items()}
        self.bos, self.eos = target_vocab[BOS], target_vocab[EOS]

    def translate(self, source: list[int]) -> tuple[list[int], list[list[float]]]:
        source = source[:self.config["max_seq_len_source"]] or [self.source_vocab[UNK]]
        return self.model.beam_search(source, self.beam, self.config["max_seq_len_target"],
                                      self.bos, self.eos)

    def _json(self, body: bytes) -> bytes:
        rows = []
        unk = self.source_vocab[UNK]
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        configuration = document.get("configuration") if isinstance(document, dict) else None
        matrix = isinstance(configuration, dict) and str(
            configuration.get("attention_matrix", "false")).lower() == "true"
        for number, instance in enumerate(json_instances(body, lines=False), start=1):
            if not isinstance(instance, dict) or not isinstance(instance.get("data"), str):
                raise InferenceError(400, f'Invalid input: instance {number} must be an object '
                                          f'{{"data": "source sentence"}}.')
            ids = [self.source_vocab.get(word, unk) for word in instance["data"].split()]
            target, attention = self.translate(ids)
            row: dict[str, Any] = {"target": " ".join(self.target_words[i] for i in target)}
            if matrix:
                row["matrix"] = attention
            rows.append(row)
        return json.dumps({"predictions": rows}).encode()

    def _recordio(self, body: bytes) -> bytes:
        from opensage.data import DataError
        from opensage.data.recordio import Record, Tensor, encode_records, iter_records

        size = len(self.source_vocab)
        out = []
        try:
            records = list(iter_records(body))
        except (DataError, ValueError) as e:
            raise InferenceError(400, f"Unable to parse RecordIO-protobuf: {e}") from None
        for number, record in enumerate(records, start=1):
            tensor = record.features.get("values")
            if tensor is None or tensor.kind != "int32" or tensor.sparse:
                raise InferenceError(400, f"Invalid input: record {number} has no dense Int32 "
                                          f"features 'values' tensor of source token ids.")
            ids = np.asarray(tensor.values, dtype=np.int64)
            bad = ids[(ids < 0) | (ids >= size)]
            if len(bad):
                raise InferenceError(400, f"Invalid input: record {number} has source token "
                                          f"id {int(bad[0])}, outside vocab.src.json "
                                          f"(ids 0..{size - 1}).")
            target, _ = self.translate(ids.tolist())
            out.append(Record(features={"target": Tensor(np.asarray(target, dtype=np.int64),
                                                         kind="int32")}))
        return encode_records(out)

    def invoke(self, body: bytes, content_type: str | None,
               accept: str | None = None) -> tuple[bytes, str]:
        kind = media_type(content_type) or JSON
        if kind not in TYPES:
            raise InferenceError(415, f"Content type {content_type} is not supported by "
                                      f"seq2seq; use application/json or "
                                      f"application/x-recordio-protobuf.")
        response, _ = negotiate(accept, TYPES, kind)
        if response != kind:
            raise InferenceError(406, f"seq2seq answers {kind} requests in {kind}, not "
                                      f"{accept}.")
        with torch.no_grad():
            if kind == JSON:
                return self._json(body), JSON
            return self._recordio(body), RECORDIO


def load(model_dir: str | os.PathLike[str]) -> Seq2SeqModel:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or 1)))
    tensors, header = load_model(model_dir, NAME)
    config = header["config"]
    model = Seq2Seq(config)
    model.load_state_dict(tensors)
    vocabularies = []
    for name in ("vocab.src.json", "vocab.trg.json"):
        path = Path(model_dir) / name
        if not path.is_file():
            raise RuntimeError(f"model.tar.gz has no {name} file")
        vocabularies.append(check_vocab(json.loads(path.read_text(encoding="utf-8")), name))
    return Seq2SeqModel(model, config, int(header.get("beam_size", 5)), *vocabularies)
