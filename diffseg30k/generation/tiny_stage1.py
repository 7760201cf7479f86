"""Tiny random Qwen2.5-VL, Grounding DINO and SAM saved as local model folders.

They let the paper profile's stage-1 / VLM code run offline through the same ``from_pretrained``
calls that load the real Hub models (tests, smoke runs). Tokenizers are built in code; every model
is seeded and saved with safetensors.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

from diffseg30k.io import atomic_dir, cache_dir

QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>")
#: Qwen's chat format for text and image parts (the real repos ship their own, longer template).
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _bert_vocab() -> dict[str, int]:
    chars = string.ascii_lowercase + string.digits + string.punctuation
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *("##" + c for c in chars)]
    return {t: i for i, t in enumerate(tokens)}


def save_tiny_qwen_vl(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen2.5-VL whose byte-level vocabulary holds only lower-case letters, space and comma."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    byte_chars = sorted(ByteLevel.alphabet())
    space = "\u0120"  # byte-level form of " "
    vocab = {c: i for i, c in enumerate([*string.ascii_lowercase, ",", space])}
    assert all(c in byte_chars for c in vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": [t for t in QWEN_SPECIALS
                                                                if t not in tokenizer.get_vocab()]})
    tokenizer.chat_template = QWEN_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [1, 1, 2]},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|im_start|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=37, num_heads=2, out_hidden_size=32,
                           fullatt_block_indexes=[1], window_size=56),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=4 * 28 * 28, max_pixels=16 * 28 * 28).save_pretrained(folder)
    return folder


def save_tiny_grounding_dino(folder: Path, seed: int = 0) -> Path:
    """Grounding DINO with a 4-stage ResNet backbone and a 1-layer BERT (decoder_layers=1 cannot build)."""
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        ResNetConfig,
    )

    vocab = _bert_vocab()
    config = GroundingDinoConfig(
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                                     out_features=["stage2", "stage3", "stage4"], layer_type="basic"),
        text_config=BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=4, intermediate_size=37, max_position_embeddings=128),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=37, decoder_ffn_dim=37,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20, num_feature_levels=3,
        encoder_n_points=2, decoder_n_points=2, max_text_len=128)
    torch.manual_seed(seed)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    BertTokenizer(vocab=vocab, model_max_length=128).save_pretrained(folder)
    GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)
    return folder


def save_tiny_sam(folder: Path, seed: int = 0) -> Path:
    """SAM with a 2-layer ViT at 64 px."""
    from transformers import SamConfig, SamImageProcessorPil, SamModel

    config = SamConfig(
        vision_config=dict(hidden_size=32, output_channels=16, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1],
                           num_pos_feats=8, mlp_dim=37),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, mlp_dim=37, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=16))
    torch.manual_seed(seed)
    SamModel(config).eval().save_pretrained(folder)
    SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                         mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16}
                         ).save_pretrained(folder)
    return folder


def tiny_stage1_models(root: Path | None = None) -> dict[str, Path]:
    """Folders of the tiny VLM, detector and segmenter (built once, then reused)."""
    root = root or cache_dir("tiny", "stage1")
    builders = {"vlm": save_tiny_qwen_vl, "detector": save_tiny_grounding_dino, "segmenter": save_tiny_sam}
    folders = {}
    for name, build in builders.items():
        folder = root / name
        if not (folder / "config.json").exists():
            with atomic_dir(folder, overwrite=True) as tmp:
                build(tmp)
        folders[name] = folder
    return folders
