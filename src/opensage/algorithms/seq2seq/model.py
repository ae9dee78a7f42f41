"""seq2seq's network, an RNN encoder-decoder with attention as Sockeye's (SageMaker's seq2seq):
a bidirectional LSTM/GRU encoder (``rnn_num_hidden`` units over both directions), an LSTM/GRU
decoder fed the previous attentional state (input feeding), attention ``dot``, ``bilinear``,
``mlp`` or ``fixed`` (uniform), and beam search. Token id 0 is padding."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Seq2Seq(nn.Module):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        c = config
        self.config = dict(c)
        hidden = c["hidden"]
        rnn = nn.LSTM if c["cell"] == "lstm" else nn.GRU
        self.lstm = c["cell"] == "lstm"
        self.layers = c["decoder_layers"]
        self.src_embed = nn.Embedding(c["source_vocab"], c["embed_source"], padding_idx=0)
        self.trg_embed = nn.Embedding(c["target_vocab"], c["embed_target"], padding_idx=0)
        self.src_dropout = nn.Dropout(c["embed_dropout_source"])
        self.trg_dropout = nn.Dropout(c["embed_dropout_target"])
        self.encoder = rnn(c["embed_source"], hidden // 2, num_layers=c["encoder_layers"],
                           batch_first=True, bidirectional=True)
        enc = 2 * (hidden // 2)
        self.decoder = rnn(c["embed_target"] + hidden, hidden, num_layers=self.layers,
                           batch_first=True)
        states = 2 if self.lstm else 1
        self.init = nn.Linear(enc, hidden * self.layers * states)
        kind = c["attention"]
        if kind == "bilinear":
            self.attn_q = nn.Linear(hidden, enc, bias=False)
        elif kind == "mlp":
            self.attn_q = nn.Linear(hidden, c["attention_hidden"], bias=False)
            self.attn_k = nn.Linear(enc, c["attention_hidden"])
            self.attn_v = nn.Linear(c["attention_hidden"], 1, bias=False)
        self.combine = nn.Linear(hidden + enc, hidden)
        self.hidden_dropout = nn.Dropout(c["decoder_hidden_dropout"])
        self.out = nn.Linear(hidden, c["target_vocab"])

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Encoder states (B, S, E), the source mask (B, S) and the decoder's first state."""
        mask = source != 0
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.src_dropout(self.src_embed(source)),
                                                   lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, final = self.encoder(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                     total_length=source.shape[1])
        mode = self.config["state_init"]
        batch = source.shape[0]
        hidden = self.config["hidden"]
        if mode == "zero":
            first = states.new_zeros(self.layers * (2 if self.lstm else 1), batch, hidden)
        else:
            if mode == "last":
                h = final[0] if self.lstm else final
                summary = torch.cat([h[-2], h[-1]], dim=1)
            else:
                m = mask.unsqueeze(-1).float()
                summary = (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            first = torch.tanh(self.init(summary)).view(batch, -1, hidden).transpose(0, 1)
        first = first.contiguous()
        state: Any = (first[:self.layers].contiguous(), first[self.layers:].contiguous()) \
            if self.lstm else first
        return states, mask, state

    def attend(self, query: torch.Tensor, keys: torch.Tensor,
               mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kind = self.config["attention"]
        if kind == "dot":
            scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)
        elif kind == "bilinear":
            scores = torch.bmm(keys, self.attn_q(query).unsqueeze(2)).squeeze(2)
        elif kind == "mlp":
            scores = self.attn_v(torch.tanh(self.attn_k(keys) + self.attn_q(query).unsqueeze(1))
                                 ).squeeze(2)
        else:
            scores = torch.zeros_like(mask, dtype=keys.dtype)
        weights = torch.softmax(scores.masked_fill(~mask, -1e9), dim=1)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights

    def step(self, token: torch.Tensor, feed: torch.Tensor, state: Any, keys: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor]:
        """One decoder step: logits (B, V), the attentional state (B, H), the RNN state and
        the attention weights over the source (B, S)."""
        x = torch.cat([self.trg_dropout(self.trg_embed(token)), feed], dim=1).unsqueeze(1)
        out, state = self.decoder(x, state)
        h = out.squeeze(1)
        context, weights = self.attend(h, keys, mask)
        attentional = self.hidden_dropout(torch.tanh(self.combine(torch.cat([h, context], 1))))
        return self.out(attentional), attentional, state, weights

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for the target inputs (``<s>`` + target)."""
        keys, mask, state = self.encode(source)
        feed = keys.new_zeros(source.shape[0], self.config["hidden"])
        logits = []
        for t in range(target_in.shape[1]):
            out, feed, state, _ = self.step(target_in[:, t], feed, state, keys, mask)
            logits.append(out)
        return torch.stack(logits, dim=1)

    def beam_search(self, source: list[int], beam: int, max_len: int, bos: int,
                    eos: int) -> tuple[list[int], list[list[float]]]:
        """The best target ids (without ``<s>``/``</s>``) for one source sequence, and its
        attention matrix (one row of source weights per target token, ``</s>`` included)."""
        with torch.no_grad():
            return self._beam_search(source, beam, max_len, bos, eos)

    def _beam_search(self, source: list[int], beam: int, max_len: int, bos: int,
                     eos: int) -> tuple[list[int], list[list[float]]]:
        src = torch.as_tensor([source], dtype=torch.long, device=self.out.weight.device)
        keys, mask, state = self.encode(src)
        feed = keys.new_zeros(1, self.config["hidden"])
        tokens = torch.full((1,), bos, dtype=torch.long, device=src.device)
        scores = keys.new_zeros(1)
        histories: list[list[int]] = [[]]
        attention: list[list[list[float]]] = [[]]
        finished: list[tuple[float, list[int], list[list[float]]]] = []
        for _ in range(max_len + 1):
            n = len(histories)
            logits, feed, state, weights = self.step(tokens, feed, state, keys.expand(n, -1, -1),
                                            mask.expand(n, -1))
            total = (scores.unsqueeze(1) + torch.log_softmax(logits, dim=1)).view(-1)
            top = torch.topk(total, min(beam, total.numel()))
            vocab = logits.shape[1]
            keep, keep_tokens, keep_scores, keep_hist, keep_attn = [], [], [], [], []
            rows = weights.tolist()
            for value, index in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                origin, token = divmod(index, vocab)
                if token == eos:
                    history = histories[origin]
                    finished.append((value / max(1, len(history) + 1), history,
                                     [*attention[origin], rows[origin]]))
                    continue
                keep.append(origin)
                keep_tokens.append(token)
                keep_scores.append(value)
                keep_hist.append([*histories[origin], token])
                keep_attn.append([*attention[origin], rows[origin]])
            best_done = max((f[0] for f in finished), default=None)
            if not keep or (best_done is not None and len(finished) >= beam):
                break
            index_t = torch.as_tensor(keep, device=src.device)
            feed = feed[index_t]
            state = (state[0][:, index_t], state[1][:, index_t]) if self.lstm \
                else state[:, index_t]
            tokens = torch.as_tensor(keep_tokens, device=src.device)
            scores = torch.as_tensor(keep_scores, device=src.device, dtype=keys.dtype)
            histories, attention = keep_hist, keep_attn
        if not finished:
            best = int(scores.argmax())
            return histories[best], attention[best]
        _, tokens_out, matrix = max(finished, key=lambda f: f[0])
        return tokens_out, matrix
