"""The neural topic model: a variational autoencoder of bag-of-words documents (NVDM-style, as
SageMaker's NTM): an MLP encoder gives a Gaussian posterior over a ``num_topics``-dimensional
latent, whose softmax is the document's topic mixture; a linear decoder (topics x vocabulary)
reconstructs the word distribution. Loss per document: the reconstruction's negative
log-likelihood of the word counts plus the KL divergence from the standard normal prior."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


class TopicModel(nn.Module):
    def __init__(self, vocabulary: int, topics: int, layers: Sequence[int], activation: str,
                 batch_norm: bool) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = vocabulary
        for size in layers:
            blocks.append(nn.Linear(width, size))
            if batch_norm:
                blocks.append(nn.BatchNorm1d(size))
            blocks.append(ACTIVATIONS[activation]())
            width = size
        self.encoder = nn.Sequential(*blocks)
        self.mu = nn.Linear(width, topics)
        self.log_sigma = nn.Linear(width, topics)
        self.decoder = nn.Linear(topics, vocabulary)

    def posterior(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # log(1 + counts): long documents do not saturate the encoder
        hidden = self.encoder(torch.log1p(counts))
        return self.mu(hidden), self.log_sigma(hidden).clamp(-10.0, 10.0)

    def topic_weights(self, counts: torch.Tensor) -> torch.Tensor:
        """Each document's topic mixture (the posterior mean's softmax)."""
        mu, _ = self.posterior(counts)
        return torch.softmax(mu, dim=1)

    def losses(self, counts: torch.Tensor, *, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Per document: (reconstruction NLL, KL divergence)."""
        mu, log_sigma = self.posterior(counts)
        z = mu + torch.randn_like(mu) * torch.exp(log_sigma) if sample else mu
        log_probs = torch.log_softmax(self.decoder(torch.softmax(z, dim=1)), dim=1)
        recons = -(counts * log_probs).sum(dim=1)
        kld = -0.5 * (1 + 2 * log_sigma - mu.pow(2) - torch.exp(2 * log_sigma)).sum(dim=1)
        return recons, kld

    def topic_words(self) -> torch.Tensor:
        """topics x vocabulary: each topic's word distribution."""
        eye = torch.eye(self.decoder.in_features, device=self.decoder.weight.device)
        return torch.softmax(self.decoder(eye), dim=1)
