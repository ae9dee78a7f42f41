"""Object2Vec's network: two encoders (``hcnn``, ``bilstm`` or ``pooled_embedding``) turn token
sequences into ``enc_dim`` vectors, a comparator combines them (``hadamard``, ``concat``,
``abs_diff``) and an MLP scores the pair (``num_classes`` logits, or one value for
``mean_squared_error``). Token id 0 is padding, as in SageMaker's data format."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MLP_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class Encoder(nn.Module):
    def __init__(self, network: str, vocab: int, embed: int, dim: int, layers: int,
                 width: int, dropout: float) -> None:
        super().__init__()
        self.network = network
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        if network == "bilstm":
            self.rnn = nn.LSTM(embed, dim // 2, num_layers=layers, batch_first=True,
                               bidirectional=True)
            out = 2 * (dim // 2)
        elif network == "hcnn":
            convs: list[nn.Module] = []
            channels = embed
            for _ in range(layers):
                convs += [nn.Conv1d(channels, dim, width, padding=width // 2), nn.ReLU()]
                channels = dim
            self.cnn = nn.Sequential(*convs)
            out = dim
        else:
            out = embed
        self.project = nn.Linear(out, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).float()
        x = self.dropout(self.embedding(tokens))
        if self.network == "bilstm":
            x, _ = self.rnn(x)
        elif self.network == "hcnn":
            x = self.cnn(x.transpose(1, 2)).transpose(1, 2)[:, :tokens.shape[1]]
            x = x.masked_fill(mask == 0, -1e4).max(dim=1).values
            return self.project(x)
        pooled = (x * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.project(pooled)


class Object2Vec(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        c = config
        self.config = dict(c)
        self.enc0 = Encoder(c["enc0_network"], c["enc0_vocab_size"], c["enc0_embed"],
                            c["enc_dim"], c["enc0_layers"], c["enc0_width"], c["dropout"])
        # enc1_network enc0: one encoder for both inputs (saved once)
        self.enc1: Encoder | None = None
        if not c["shared"]:
            self.enc1 = Encoder(c["enc1_network"], c["enc1_vocab_size"], c["enc1_embed"],
                                c["enc_dim"], c["enc1_layers"], c["enc1_width"], c["dropout"])
        width = c["enc_dim"] * sum(2 if name == "concat" else 1 for name in c["comparators"])
        blocks: list[nn.Module] = []
        for _ in range(c["mlp_layers"]):
            blocks.append(nn.Linear(width, c["mlp_dim"]))
            if c["mlp_activation"] in MLP_ACTIVATIONS:
                blocks.append(MLP_ACTIVATIONS[c["mlp_activation"]]())
            width = c["mlp_dim"]
        outputs = c["num_classes"] if c["output_layer"] == "softmax" else 1
        blocks.append(nn.Linear(width, outputs))
        self.mlp = nn.Sequential(*blocks)

    def encoder1(self) -> Encoder:
        return self.enc1 if self.enc1 is not None else self.enc0

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        a, b = self.enc0(in0), self.encoder1()(in1)
        parts = []
        for name in self.config["comparators"]:
            if name == "hadamard":
                parts.append(a * b)
            elif name == "concat":
                parts += [a, b]
            else:
                parts.append(torch.abs(a - b))
        return self.mlp(torch.cat(parts, dim=1))
