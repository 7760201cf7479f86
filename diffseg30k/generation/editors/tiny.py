"""Tiny randomly initialised components for the mini profile and the tests.

Every builder returns a *real* transformers/diffusers class built from a small config (no Hub
access); tokenizers are built in code. Weights are drawn from ``torch.manual_seed(seed)`` so a tiny
pipeline is identical on every machine, and every module is put in ``.eval()`` mode (dropout would
break determinism). Architectures differ per generator on purpose (VAE depth, scheduler, backbone),
so each tiny editor leaves its own trace, like the real ones.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import torch

#: Characters every code-built tokenizer knows (prompts are lower-cased English).
_CHARS = string.ascii_lowercase + string.digits + string.punctuation
TEXT_HIDDEN = 32


def seeded(seed: int):
    """Context manager-free helper: reseed torch before building a module."""
    torch.manual_seed(seed)


def frozen(module):
    """Put a module in eval mode without gradients (determinism, memory)."""
    module.eval()
    module.requires_grad_(False)
    return module


# ----------------------------------------------------------------------------------- tokenizers
def clip_tokenizer():
    """A byte-level BPE CLIPTokenizer over single characters (no merges), 77 tokens long."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in chars:
            vocab.setdefault(char + suffix, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_tokenizer(model_max_length: int = 256):
    """A unigram T5Tokenizer over characters and word-initial characters."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(c, -2.0) for c in _CHARS] + [("\u2581" + c, -1.5) for c in _CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def bert_tokenizer(model_max_length: int = 77):
    """A WordPiece BertTokenizer over characters."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_CHARS, *("##" + c for c in _CHARS)]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, model_max_length=model_max_length)


@lru_cache(maxsize=1)
def _sentencepiece_model() -> bytes:
    """A small sentencepiece model trained in memory on generated English text."""
    import io

    import sentencepiece as spm

    words = ["a", "photo", "of", "the", "red", "blue", "green", "person", "dog", "cat", "car", "tree",
             "sky", "table", "with", "and", "on", "in", "background", "empty", "wooden", "small", "large"]
    sentences = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8)) for i in range(200)]
    sentences += [" ".join(_CHARS)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=120,
                                   character_coverage=1.0, model_type="bpe", minloglevel=3,
                                   num_threads=1, bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
    return model.getvalue()


def chatglm_tokenizer():
    """Kolors' ChatGLMTokenizer over a sentencepiece model trained in code (kept in the cache)."""
    from diffseg30k.io import atomic_write_bytes, cache_dir

    data = _sentencepiece_model()
    path = cache_dir("tiny") / "chatglm-tokenizer.model"
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
    from diffusers.pipelines.kolors import ChatGLMTokenizer

    return ChatGLMTokenizer(vocab_file=str(path))


# ----------------------------------------------------------------------------------- text encoders
def clip_text_config(hidden: int = TEXT_HIDDEN, projection: int = TEXT_HIDDEN, layers: int = 2):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=hidden,
                          intermediate_size=37, num_attention_heads=4, num_hidden_layers=layers,
                          vocab_size=600, projection_dim=projection, hidden_act="gelu",
                          max_position_embeddings=77)


def clip_text_model(seed: int, with_projection: bool = False, **config):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    seeded(seed)
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return frozen(cls(clip_text_config(**config)))


def t5_encoder(seed: int, d_model: int = TEXT_HIDDEN):
    from transformers import T5Config, T5EncoderModel

    seeded(seed)
    config = T5Config(vocab_size=200, d_model=d_model, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1)
    return frozen(T5EncoderModel(config))


def bert_model(seed: int, hidden: int = TEXT_HIDDEN):
    from transformers import BertConfig, BertModel

    seeded(seed)
    config = BertConfig(vocab_size=200, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=128, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return frozen(BertModel(config, add_pooling_layer=False))


def chatglm_model(seed: int, hidden: int = TEXT_HIDDEN):
    """Kolors' ChatGLM text encoder; it leaves its weights uninitialised, so set them all here."""
    from diffusers.pipelines.kolors import ChatGLMModel
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig

    seeded(seed)
    config = ChatGLMConfig(num_layers=2, padded_vocab_size=160, hidden_size=hidden, ffn_hidden_size=37,
                           kv_channels=8, num_attention_heads=4, seq_length=256, original_rope=True,
                           torch_dtype="float32")
    model = ChatGLMModel(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name.lower():
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
    return frozen(model)


# ----------------------------------------------------------------------------------- image models
def vae(seed: int, levels: int = 2, latent_channels: int = 4, width: int = 16, **extra):
    """AutoencoderKL downsampling by ``2 ** (levels - 1)``."""
    from diffusers import AutoencoderKL

    seeded(seed)
    channels = [width * min(2 ** i, 2) for i in range(levels)]
    return frozen(AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels,
                                block_out_channels=channels, layers_per_block=1, norm_num_groups=8,
                                down_block_types=["DownEncoderBlock2D"] * levels,
                                up_block_types=["UpDecoderBlock2D"] * levels, sample_size=64, **extra))


def unet(seed: int, in_channels: int, cross_attention_dim: int, **extra):
    """A two-level UNet2DConditionModel (the SD/SDXL/Kolors/Kandinsky backbone)."""
    from diffusers import UNet2DConditionModel

    seeded(seed)
    config = dict(block_out_channels=(16, 32), layers_per_block=1, sample_size=32, in_channels=in_channels,
                  out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=cross_attention_dim,
                  attention_head_dim=(2, 4), norm_num_groups=8)
    config.update(extra)
    return frozen(UNet2DConditionModel(**config))


def sdxl_unet(seed: int, in_channels: int, text_hidden: int, pooled_dim: int, time_ids: int = 6):
    """UNet with SDXL's text_time conditioning (``time_ids`` micro-conditioning numbers)."""
    return unet(seed, in_channels, text_hidden, use_linear_projection=True, addition_embed_type="text_time",
                addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
                projection_class_embeddings_input_dim=time_ids * 8 + pooled_dim)


def save_tiny_lora(folder: Path, unet_module, seed: int, weight_name: str, pipeline_class) -> Path:
    """Write a random LoRA for ``unet_module`` in diffusers' format (needs peft) and return its file."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from diffseg30k.io import atomic_dir

    target = folder / weight_name
    if target.exists():
        return target
    seeded(seed)
    unet_module.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():  # gaussian init keeps B at zero; make the adapter actually change the model
        for name, param in unet_module.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.2)
    layers = get_peft_model_state_dict(unet_module)
    unet_module.delete_adapters(unet_module.active_adapters())
    with atomic_dir(folder, overwrite=True) as tmp:
        pipeline_class.save_lora_weights(tmp, unet_lora_layers=layers, weight_name=weight_name,
                                         safe_serialization=True)
    return target
