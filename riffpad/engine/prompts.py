"""Weighted prompt embeddings: ``(dub bass:1.3)``, ``(x)`` = x1.1, ``[x]`` = /1.1.

Same behaviour as Riffusion's ``embed_text_weighted`` (lpw_stable_diffusion's
``get_weighted_text_embeddings`` with ``max_embeddings_multiples=3, no_boseos_middle=False``):

- each run of text is tokenized on its own (without BOS/EOS) and its tokens carry its weight;
- prompts up to 75 tokens are one 77-token chunk ``BOS tokens EOS EOS...``; longer ones (up to
  3 x 75 tokens) are split into 75-token chunks, each encoded as ``BOS chunk EOS``;
- token embeddings are multiplied by their weights, then the whole embedding is rescaled so its
  mean equals the unweighted mean.

Tokens past 3 x 75 are dropped. ``PromptEncoder.usage`` says how much of a prompt was used,
and the cut is logged once per prompt in riffpad's words (transformers' own "sequence
length is longer than ... (1298 > 77)" warning is silenced: riffpad never feeds the model
more than one 77-token chunk at a time).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import torch

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
MAX_CHUNKS = 3

log = logging.getLogger("riffpad.engine")

# One lexical item per match: escapes, brackets, ":weight)", plain text, or a stray ":".
_TOKEN = re.compile(
    r"""
    \\[()\[\]\\]      # escaped literal
  | \\                # lone backslash
  | [(\[]             # opening bracket
  | :([+-]?[.\d]+)\)  # explicit weight closing a round bracket
  | [)\]]             # closing bracket
  | [^\\()\[\]:]+     # plain text
  | :                 # a colon that is not a weight
    """,
    re.X,
)


def parse_weights(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) runs; adjacent runs of equal weight are merged.

    Unbalanced openers apply to the end of the prompt; unmatched closers are literal text.
    A weight that is not a number, such as ``(x:.)``, raises ValueError (lpw raises too).
    """
    runs: list[list] = []
    open_round: list[int] = []
    open_square: list[int] = []

    def scale(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    for m in _TOKEN.finditer(text):
        item, weight = m.group(0), m.group(1)
        if item.startswith("\\"):
            runs.append([item[1:], 1.0])
        elif item == "(":
            open_round.append(len(runs))
        elif item == "[":
            open_square.append(len(runs))
        elif weight is not None and open_round:
            try:
                factor = float(weight)
            except ValueError:  # lpw's pattern also matches "(x:.)" and "(x:1.2.3)"
                raise ValueError(f"bad prompt weight {item!r} in {text!r}") from None
            scale(open_round.pop(), factor)
        elif item == ")" and open_round:
            scale(open_round.pop(), ROUND_MULTIPLIER)
        elif item == "]" and open_square:
            scale(open_square.pop(), SQUARE_MULTIPLIER)
        else:
            runs.append([item, 1.0])
    for start in open_round:
        scale(start, ROUND_MULTIPLIER)
    for start in open_square:
        scale(start, SQUARE_MULTIPLIER)

    merged: list[tuple[str, float]] = []
    for text_run, w in runs or [["", 1.0]]:
        if merged and merged[-1][1] == w:
            merged[-1] = (merged[-1][0] + text_run, w)
        else:
            merged.append((text_run, w))
    return merged


@dataclass(frozen=True)
class PromptUsage:
    """How much of a prompt the encoder used: ``used`` of its ``tokens`` (at most ``limit``)."""

    tokens: int
    used: int
    limit: int
    dropped: str = ""  # the start of the text past the limit, as the tokenizer reads it

    @property
    def cut(self) -> bool:
        return self.used < self.tokens

    def message(self, prompt: str) -> str:
        head = prompt if len(prompt) <= 40 else prompt[:37] + "..."
        return (
            f"prompt {head!r} is {self.tokens} tokens long; riffpad uses the first {self.used}"
            f" ({MAX_CHUNKS} chunks of {self.limit // MAX_CHUNKS}) and ignores the rest,"
            f" from {self.dropped!r}"
        )

    def as_dict(self) -> dict:
        return {"tokens": self.tokens, "used": self.used, "cut": self.cut}


@dataclass
class PromptEncoder:
    """Turns prompts into CLIP text embeddings, cached per prompt (the encoder is frozen)."""

    tokenizer: object
    text_encoder: torch.nn.Module
    device: torch.device
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def chunk_length(self) -> int:
        return int(self.tokenizer.model_max_length)  # 77 for CLIP

    def tokens_with_weights(self, prompt: str) -> tuple[list[int], list[float]]:
        key = ("tokens", prompt)
        if key not in self._cache:
            self._cache[key] = self._tokens_with_weights(prompt)
        return self._cache[key]

    def _tokens_with_weights(self, prompt: str) -> tuple[list[int], list[float]]:
        limit = (self.chunk_length - 2) * MAX_CHUNKS
        ids: list[int] = []
        weights: list[float] = []
        for text, weight in parse_weights(prompt):
            # verbose=False: no "longer than the maximum (1298 > 77)" warning; the cut is
            # reported once, below, in terms of what riffpad does with it.
            piece = self.tokenizer(text, verbose=False).input_ids[1:-1]  # drop BOS/EOS
            ids += piece
            weights += [weight] * len(piece)
        usage = PromptUsage(len(ids), min(len(ids), limit), limit)
        if usage.cut:
            dropped = self.tokenizer.decode(ids[limit : limit + 12]).strip()
            usage = PromptUsage(usage.tokens, usage.used, limit, dropped)
            log.warning(usage.message(prompt))
        self._cache[("usage", prompt)] = usage
        return ids[:limit], weights[:limit]

    def usage(self, prompt: str) -> PromptUsage:
        """How much of ``prompt`` the embedding uses (tokens past 3 x 75 are dropped)."""
        self.tokens_with_weights(prompt)
        return self._cache[("usage", prompt)]

    def chunks_needed(self, prompt: str) -> int:
        n = len(self.tokens_with_weights(prompt)[0])
        return max(1, min(MAX_CHUNKS, (n - 1) // (self.chunk_length - 2) + 1))

    @torch.no_grad()
    def weighted(self, prompt: str, chunks: int | None = None) -> torch.Tensor:
        """(1, 77*chunks... ) embedding of ``prompt`` with weights applied and mean restored.

        ``chunks`` forces a longer layout (to match a longer prompt it is blended with).
        """
        chunks = max(chunks or 1, self.chunks_needed(prompt))
        key = ("weighted", prompt, chunks)
        if key not in self._cache:
            self._cache[key] = self._weighted(prompt, chunks)
        return self._cache[key]

    def _weighted(self, prompt: str, chunks: int) -> torch.Tensor:
        ids, weights = self.tokens_with_weights(prompt)
        body = self.chunk_length - 2
        total = body * chunks + 2
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        padded_ids = [bos, *ids] + [eos] * (total - 1 - len(ids))
        # One weight per chunk position: 1.0 for each chunk's BOS/EOS and for padding.
        padded_w: list[float] = []
        if weights:
            for j in range(chunks):
                padded_w += [1.0, *weights[j * body : (j + 1) * body], 1.0]
        padded_w += [1.0] * (chunks * self.chunk_length - len(padded_w))

        ids_t = torch.tensor([padded_ids], dtype=torch.long, device=self.device)
        if chunks == 1:
            emb = self.text_encoder(ids_t)[0]
        else:
            parts = []
            for j in range(chunks):
                part = ids_t[:, j * body : (j + 1) * body + 2].clone()
                part[:, 0], part[:, -1] = ids_t[0, 0], ids_t[0, -1]
                parts.append(self.text_encoder(part)[0])
            emb = torch.cat(parts, dim=1)

        w = torch.tensor([padded_w], dtype=emb.dtype, device=self.device)
        before = emb.float().mean(dim=(-2, -1)).to(emb.dtype)
        emb = emb * w.unsqueeze(-1)
        after = emb.float().mean(dim=(-2, -1)).to(emb.dtype)
        if bool((after == 0).any()):  # lpw would divide by zero; leave such an embedding as is
            return emb
        return emb * (before / after).unsqueeze(-1).unsqueeze(-1)

    @torch.no_grad()
    def unconditional(self, chunks: int = 1) -> torch.Tensor:
        """Embedding of the empty prompt, the unconditional half of classifier-free guidance."""
        key = ("uncond", chunks)
        if key not in self._cache:
            if chunks == 1:
                ids = self.tokenizer(
                    [""],
                    padding="max_length",
                    max_length=self.chunk_length,
                    truncation=True,
                    return_tensors="pt",
                ).input_ids
                self._cache[key] = self.text_encoder(ids.to(self.device))[0]
            else:
                self._cache[key] = self.weighted("", chunks)
        return self._cache[key]
