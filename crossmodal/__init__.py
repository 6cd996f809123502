"""crossmodal: a multimodal GPT built from scratch, small enough to read in one sitting.

The folders are the architecture, read bottom up (each imports only from those listed before it):

    checks, devices, folders, images   notebook claims, devices, checkpoint folders on disk, the input contract
    nn/                                the model: attention → ViT → decoder → VisionLanguageModel, Flamingo
    data/, pretrained, viz, drawings   MNIST, numbers, questions, facts; the shipped models; pictures of the maps;
                                       whether a picture is a drawing (not noise, not a blot)
    training/                          one trainer for every task, checkpoints, torchrun
    tasks/                             captions, numbers, questions, text, eyes
    widgets/                           the drawing pad and the explorers for notebooks
    train, caption                     the command lines
"""

from importlib.metadata import PackageNotFoundError, version

from .data import caption_for, load_emnist, load_mnist
from .images import BlankImageError, preprocess_drawing, preprocess_number, to_image_batch
from .nn import (
    Decoder,
    DecoderConfig,
    Flamingo,
    Generation,
    KVCache,
    MultiHeadAttention,
    TimmEncoder,
    VisionConfig,
    VisionLanguageModel,
    VisionTransformer,
    VLMConfig,
    build_char_tokenizer,
    load_model,
    scaled_dot_product_attention,
    set_fused_attention,
)
from .pretrained import (
    load_answerer,
    load_captioner,
    load_fusion,
    load_gpt2_eyes,
    load_reader,
    load_text_lm,
    load_wide_captioner,
)

try:
    __version__ = version("crossmodal")  # from the installed package's metadata (pyproject.toml)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BlankImageError", "Decoder", "DecoderConfig", "Flamingo", "Generation", "KVCache", "MultiHeadAttention",
    "TimmEncoder", "VLMConfig", "VisionConfig", "VisionLanguageModel", "VisionTransformer", "build_char_tokenizer",
    "caption_for", "load_answerer", "load_captioner", "load_emnist", "load_fusion", "load_gpt2_eyes", "load_mnist",
    "load_model", "load_reader", "load_text_lm", "load_wide_captioner", "preprocess_drawing", "preprocess_number",
    "scaled_dot_product_attention", "set_fused_attention", "to_image_batch",
]
