"""The model, and nothing but the model: it imports no task, no data set and no training code.

    layers.py         Mlp, init_weights, ImageEncoder (what every vision encoder offers)
    attention.py      attention written out and fast; multi-head self- and cross-attention, its KV cache
    tokenizer.py      a character tokenizer and an open byte-level one as transformers tokenizers; chat templates
    config.py         VisionConfig, DecoderConfig, VLMConfig: what builds a model, and its checks
    vit.py            the Vision Transformer (timm's names), proven equal to timm's
    encoders.py       a timm ViT or CLIP's image tower as the encoder
    splice.py         LLaVA's splice: the image's embeddings written in at the text's <image> tokens
    fusion.py         three ways for text to see an image: cross-attention, a prefix, raw patches; and the splice
    decoder.py        the GPT-style decoder whose layers can look at an image, proven equal to GPT-2
    decoding.py       greedy decoding, sampling, beam search
    model.py          VisionLanguageModel: encoder → projector → decoder; generate_text, the door for maps
    text_io.py        its text in and out: prompts from the chat template, tokens read back, the tokenizer checked
    flamingo.py       a frozen GPT-2 given eyes: Flamingo's gated cross-attention
    serialization.py  one checkpoint folder format, checked before anything is built
    auto.py           load_model(folder): whichever of these a folder holds
"""

from .attention import MultiHeadAttention, scaled_dot_product_attention, set_fused_attention
from .auto import load_model, save_model
from .config import DecoderConfig, VisionConfig, VLMConfig
from .decoder import Decoder, KVCache
from .encoders import OpenClipEncoder, TimmEncoder
from .flamingo import Flamingo
from .model import IGNORE_INDEX, Generation, VisionLanguageModel
from .tokenizer import build_byte_tokenizer, build_char_tokenizer, build_chat_tokenizer
from .vit import VisionTransformer

__all__ = ["IGNORE_INDEX", "Decoder", "DecoderConfig", "Flamingo", "Generation", "KVCache", "MultiHeadAttention",
           "OpenClipEncoder", "TimmEncoder", "VLMConfig", "VisionConfig", "VisionLanguageModel", "VisionTransformer",
           "build_byte_tokenizer", "build_char_tokenizer", "build_chat_tokenizer", "load_model", "save_model",
           "scaled_dot_product_attention", "set_fused_attention"]
