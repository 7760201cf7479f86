"""GLIDE's tokenizer: OpenAI's byte-level BPE with the GPT-2 vocabulary (50,257 tokens, the file
pair ``encoder.json``/``vocab.bpe`` of glide-text2im, identical to transformers' GPT-2 tokenizer
files ``vocab.json``/``merges.txt``), applied to the lower-cased prompt. Prompts are truncated or
padded to the model's text context with the end-of-text token, and a mask marks the real tokens.

The vocabulary is loaded from a tokenizer folder (or the Hub's ``openai-community/gpt2``), never
shipped here; :func:`write_tiny_tokenizer` trains a small one in code for tests and the mini profile.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

#: Hub repository holding GPT-2's BPE files (the vocabulary GLIDE was trained with).
DEFAULT_TOKENIZER_REPO = "openai-community/gpt2"
#: (vocabulary, merges) file names accepted in a folder: transformers' names, then OpenAI's.
FILE_PAIRS = (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe"))
END_OF_TEXT = "<|endoftext|>"


class GlideTokenizer:
    """Byte-level BPE tokenizer (a transformers ``GPT2Tokenizer``) with GLIDE's padding rule."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> GlideTokenizer:
        """Load ``vocab.json`` + ``merges.txt`` (or ``encoder.json`` + ``vocab.bpe``) from ``folder``."""
        from transformers import GPT2Tokenizer

        folder = Path(folder)
        for vocab_name, merges_name in FILE_PAIRS:
            vocab_path, merges_path = folder / vocab_name, folder / merges_name
            if vocab_path.is_file() and merges_path.is_file():
                break
        else:
            names = " or ".join(" + ".join(pair) for pair in FILE_PAIRS)
            raise FileNotFoundError(f"{folder}: no BPE tokenizer files ({names})")
        try:
            vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{vocab_path}: not a JSON vocabulary ({err})") from err
        lines = merges_path.read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        bad = next((m for m in merges if len(m) != 2), None)
        if not isinstance(vocab, dict) or bad is not None:
            raise ValueError(f"{folder}: malformed BPE files (vocabulary must map tokens to ids; "
                             f"every merge line must hold two symbols, got {bad!r})")
        if END_OF_TEXT not in vocab:
            raise ValueError(f"{vocab_path}: the vocabulary has no {END_OF_TEXT} token")
        return cls(GPT2Tokenizer(vocab=vocab, merges=merges))

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike = DEFAULT_TOKENIZER_REPO,
                        revision: str | None = None) -> GlideTokenizer:
        """Load from a local folder, or download the two BPE files of a Hub repository."""
        if Path(source).is_dir():
            return cls.from_folder(source)
        from huggingface_hub import hf_hub_download

        paths = [hf_hub_download(str(source), name, revision=revision) for name in FILE_PAIRS[0]]
        return cls.from_folder(Path(paths[0]).parent)

    @property
    def n_vocab(self) -> int:
        return len(self.tokenizer)

    @property
    def end_token(self) -> int:
        """The padding token: the last id, ``<|endoftext|>`` (as glide-text2im's ``end_token``)."""
        return self.n_vocab - 1

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text.lower(), add_special_tokens=False)["input_ids"]

    def padded_tokens_and_mask(self, tokens: list[int], text_ctx: int) -> tuple[list[int], list[bool]]:
        """Truncate to ``text_ctx`` tokens, pad with :attr:`end_token`; the mask is True at real tokens."""
        tokens = list(tokens)[:text_ctx]
        padding = text_ctx - len(tokens)
        return tokens + [self.end_token] * padding, [True] * len(tokens) + [False] * padding

    def batch(self, prompts: list[str], text_ctx: int,
              device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens, mask)`` tensors of shape (len(prompts), text_ctx); "" gives the empty prompt
        used as the unconditional branch of classifier-free guidance."""
        pairs = [self.padded_tokens_and_mask(self.encode(p) if p else [], text_ctx) for p in prompts]
        tokens = torch.tensor([t for t, _ in pairs], dtype=torch.long, device=device)
        return tokens, torch.tensor([m for _, m in pairs], dtype=torch.bool, device=device)


_TINY_CORPUS = ("a photo of a dog on the grass", "a red car in the street", "a person with a blue hat",
                "an empty wooden table", "a cat sitting on a sofa", "green trees and the sky",
                "replace the object with a small plant", "remove the person from the background")


def write_tiny_tokenizer(folder: str | os.PathLike, n_vocab: int = 300) -> Path:
    """Train a byte-level BPE of ``n_vocab`` tokens (256 bytes, merges, ``<|endoftext|>`` last) on
    a few English phrases with the ``tokenizers`` library and write GPT-2 style files to ``folder``.
    Beyond what the phrases support (about 400 tokens), the vocabulary is filled with unused entries,
    so random full-size models (50,257 tokens) can be driven too."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from diffseg30k.io import atomic_write_text

    folder = Path(folder)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=n_vocab - 1, initial_alphabet=alphabet, show_progress=False,
                                  min_frequency=1)
    bpe.train_from_iterator(list(_TINY_CORPUS) * 4, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    vocab.update({f"<|unused{i}|>": i for i in range(len(vocab), n_vocab - 1)})
    vocab[END_OF_TEXT] = len(vocab)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    atomic_write_text(folder / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    atomic_write_text(folder / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    return folder
