"""crossmodal: a multimodal GPT built from scratch, small enough to read in one sitting.

attention → vit → decoder → model (the captioner), then inputs, data, numbers, tokenizer, train, reading, pretrained.
"""

from importlib.metadata import PackageNotFoundError, version

from .attention import MultiHeadAttention, scaled_dot_product_attention, set_fused_attention
from .config import CaptionerConfig, DecoderConfig, VisionConfig
from .data import caption_for, load_mnist
from .decoder import Decoder, KVCache
from .emnist import load_emnist
from .inputs import BlankImageError, preprocess_drawing, preprocess_number, to_image_batch
from .model import Caption, Captioner
from .pretrained import load_answerer, load_gpt2_eyes, load_pretrained, load_reader, load_text_lm
from .tokenizer import build_char_tokenizer
from .vit import TimmEncoder, VisionTransformer

try:
    __version__ = version("crossmodal")  # from the installed package's metadata (pyproject.toml)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BlankImageError", "Caption", "Captioner", "CaptionerConfig", "Decoder", "DecoderConfig", "KVCache",
    "MultiHeadAttention", "TimmEncoder", "VisionConfig", "VisionTransformer", "build_char_tokenizer", "caption_for",
    "load_answerer", "load_emnist", "load_gpt2_eyes", "load_mnist", "load_pretrained", "load_reader", "load_text_lm",
    "preprocess_drawing",
    "preprocess_number", "scaled_dot_product_attention", "set_fused_attention", "to_image_batch",
]
