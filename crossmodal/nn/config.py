"""Configuration: one small dataclass per part, nested in `VLMConfig`.

Saved next to every checkpoint as config.json, so a checkpoint rebuilds its own model.
"""

import math
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints

from .layers import pair

FUSIONS = ("cross", "prefix", "raw")  # how the text sees the image (fusion.py): notebook 09's three, side by side
SPLICE = "splice"  # LLaVA's splice at the <image> tokens (splice.py): the recipe of notebook 11
ALL_FUSIONS = FUSIONS + (SPLICE,)  # what VLMConfig.fusion may be


@dataclass
class VisionConfig:
    image_size: int | tuple[int, int] = 28  # square, or (height, width) as in timm
    patch_size: int | tuple[int, int] = 4  # 28 / 4 = 7, so a 7×7 grid of 49 patches
    in_chans: int = 1
    stem: str = "patch"  # "patch": one linear map per patch, as in ViT and timm; "conv": early convolutions
    stem_channels: int = 0  # the conv stem's first 3×3 convolution, at full resolution: its channels (0: none)
    dim: int = 64
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 2.0
    class_token: bool = False  # the captioner attends to patches only; timm's default is True
    timm_model: str = ""  # a timm model name: use that ViT as the encoder instead (see vit.TimmEncoder)
    # pixel normalisation, one value per channel (MNIST's here); a timm encoder uses its own pretrained_cfg's
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)

    @property
    def grid_size(self):
        """(grid_h, grid_w): patches down and across."""
        (h, w), (ph, pw) = pair(self.image_size), pair(self.patch_size)
        return h // ph, w // pw


@dataclass
class DecoderConfig:
    vocab_size: int = 32  # set from the tokenizer
    block_size: int = 32  # longest token sequence: <bos> + 25 characters + <eos> fits
    dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    cross_attention_every: int = 1  # 1: every layer; k: layers k-1, 2k-1, ... (0: none, a blind decoder)
    # Flamingo / Llama 3.2 tanh gate, starting closed (0). It protects a *pretrained* language model
    # from random cross-attention; trained from scratch it only slows learning (see notebook 10).
    gated: bool = False

    def has_cross_attention(self, layer):
        k = self.cross_attention_every
        return k > 0 and (layer + 1) % k == 0


@dataclass
class VLMConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = 0
    # how the text sees the image (fusion.py): "cross"-attention (Flamingo), a "prefix" of projected ViT
    # patch embeddings (LLaVA), "raw" patches linearly embedded as a prefix, with no ViT (Fuyu), or the projected
    # patch embeddings "splice"d in at the text's <image> tokens (LLaVA as transformers runs it, splice.py)
    fusion: str = "cross"
    image_id: int = -1  # the tokenizer's <image> token (-1: it has none); the "splice" fusion reads the image there

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Rebuild from `to_dict()`; unknown keys are an error, not silently dropped."""
        def build(kind, values):
            known = {f.name for f in fields(kind)}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown {kind.__name__} fields {sorted(unknown)}; expected some of {sorted(known)}")
            return kind(**values)

        d = dict(d)
        vision = build(VisionConfig, d.pop("vision", {}))
        decoder = build(DecoderConfig, d.pop("decoder", {}))
        return build(cls, {**d, "vision": vision, "decoder": decoder})


def check_types(obj, prefix=""):
    """Raise ValueError for a field whose value does not have its declared type (JSON's lists count as tuples)."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        value, kind = getattr(obj, f.name), hints[f.name]
        if not is_dataclass(kind) and not _matches(value, kind):
            name = kind.__name__ if isinstance(kind, type) else str(kind)
            raise ValueError(f"{prefix}{f.name} must be of type {name}, got {value!r}")


def _matches(value, kind):
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        kinds = [args[0]] * len(value) if Ellipsis in args else list(args)
        return len(kinds) == len(value) and all(_matches(v, k) for v, k in zip(value, kinds))
    if kind in (int, float):  # an int is a fine float; a bool is neither
        return isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    return isinstance(value, kind) if isinstance(kind, type) else True


POSITIVE = ("image_size", "patch_size", "in_chans", "dim", "depth", "num_heads", "mlp_ratio", "std", "vocab_size",
            "block_size")
# Far above any model here, far below what would take minutes to build or gigabytes to hold: a config.json that
# asks for more (hand-edited, or damaged) is refused before anything is built.
LIMITS = {"image_size": 8192, "patch_size": 8192, "in_chans": 64, "dim": 16_384, "depth": 256, "num_heads": 256,
          "mlp_ratio": 64, "vocab_size": 1_000_000, "block_size": 65_536}


def check_fusion(config):
    """Refuse a fusion setting the model cannot build (check_config and VisionLanguageModel both ask)."""
    v = config.vision
    if config.fusion not in ALL_FUSIONS:
        raise ValueError(f"fusion must be one of {ALL_FUSIONS}, got {config.fusion!r}")
    if config.fusion != "cross" and config.decoder.cross_attention_every != 0:
        raise ValueError(f"fusion {config.fusion!r} puts the image in the decoder's sequence, which then has no "
                         "cross-attention: set decoder.cross_attention_every to 0 (fusion.with_fusion does)")
    if config.fusion == "raw" and (v.timm_model or v.stem != "patch"):
        raise ValueError("fusion 'raw' has no vision encoder, only one linear map per patch: it takes neither "
                         "vision.timm_model nor vision.stem 'conv'")
    if config.image_id != -1 and not 0 <= config.image_id < config.decoder.vocab_size:
        raise ValueError(f"image_id must be -1 (no <image> token) or a token id below decoder.vocab_size "
                         f"({config.decoder.vocab_size}), got {config.image_id}")
    if config.fusion == SPLICE and config.image_id in (-1, config.bos_id, config.eos_id, config.pad_id):
        raise ValueError(f"fusion 'splice' reads the image at the text's <image> tokens: set image_id to the "
                         f"tokenizer's <image> token, apart from <bos>, <eos> and <pad> (got {config.image_id}; "
                         "VisionLanguageModel.for_tokenizer sets it from a tokenizer that has one)")


def check_config(config):
    """Raise ValueError naming the first field of a wrong type or out of range (say, in a hand-edited config.json)."""
    check_types(config)
    check_vision(config.vision)
    check_part(config.decoder, "decoder.")
    check_fusion(config)
    if config.decoder.cross_attention_every < 0:
        raise ValueError(f"decoder.cross_attention_every must be 0 or more, got {config.decoder.cross_attention_every}")
    for name in ("bos_id", "eos_id", "pad_id"):
        if not 0 <= getattr(config, name) < config.decoder.vocab_size:
            raise ValueError(f"{name} must be a token id below decoder.vocab_size ({config.decoder.vocab_size})")


def check_part(part, prefix):
    """The types, sizes and heads of a VisionConfig or DecoderConfig (`prefix`: how its fields are named)."""
    check_types(part, prefix)
    for name in POSITIVE:
        values = getattr(part, name, 1)
        values = values if isinstance(values, (tuple, list)) else [values]
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"{prefix}{name} must be a finite number above 0, got {getattr(part, name)!r}")
        if name in LIMITS and max(values) > LIMITS[name]:
            raise ValueError(f"{prefix}{name} is {max(values)}, more than this library builds ({LIMITS[name]})")
    if part.dim % part.num_heads:
        raise ValueError(f"{prefix}dim ({part.dim}) must be a multiple of {prefix}num_heads ({part.num_heads})")


def check_vision(v):
    """Raise ValueError for a VisionConfig that cannot be built, or would normalise or cut the pixels wrongly (the
    vision-language model's encoder and Flamingo's alike)."""
    check_part(v, "vision.")
    if not all(math.isfinite(m) for m in v.mean) or not all(s >= 1e-6 for s in v.std):
        raise ValueError(f"vision.mean must be finite and vision.std at least 1e-6 (they normalise the pixels), got "
                         f"mean {v.mean!r}, std {v.std!r}")
    if len(v.mean) not in (1, v.in_chans) or len(v.std) not in (1, v.in_chans):
        raise ValueError(f"vision.mean and vision.std need one value, or one per channel ({v.in_chans}); got "
                         f"{len(v.mean)} and {len(v.std)}")
    (ph, pw), (h, w) = pair(v.patch_size), pair(v.image_size)
    if ph > h or pw > w:
        raise ValueError(f"vision.patch_size {v.patch_size!r} is larger than the image {v.image_size!r}: a patch is a "
                         "piece of the image")
    if v.stem not in ("patch", "conv"):
        raise ValueError(f"vision.stem must be 'patch' or 'conv', got {v.stem!r}")
    if v.stem == "conv" and (ph != pw or ph < 2):
        raise ValueError(f"vision.stem 'conv' needs a square patch_size of 2 or more; got {v.patch_size!r} (use "
                         "vision.stem 'patch' for that size)")
    if not 0 <= v.stem_channels <= 1024 or (v.stem_channels and v.stem != "conv"):
        raise ValueError(f"vision.stem_channels must be from 0 to 1024, and above 0 only with vision.stem 'conv'; "
                         f"got {v.stem_channels!r} with stem {v.stem!r}")


def gpt2_config_from_json(values):
    """A transformers GPT2Config from a config.json's values, refused (ValueError) unless check_gpt2_config passes."""
    from transformers import GPT2Config

    implementation = values.get("_attn_implementation", values.get("attn_implementation"))
    if implementation not in (None, "eager", "sdpa"):  # flash attention needs a package and a GPU few have
        raise ValueError(f"_attn_implementation must be 'eager' or 'sdpa', got {implementation!r}")
    try:
        config = GPT2Config.from_dict(values)
    except Exception as err:  # transformers and huggingface_hub raise their own kinds for a field of a wrong type
        raise ValueError(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__) from None
    check_gpt2_config(config)
    return config


def check_gpt2_config(config):
    """Refuse a transformers GPT2Config that is not a sane size to build, or whose layers would not run (a damaged or
    hand-edited config.json, or flags)."""
    from transformers.activations import ACT2FN

    sizes = {"n_layer": (config.n_layer, 256), "n_embd": (config.n_embd, 16_384), "n_head": (config.n_head, 256),
             "n_positions": (config.n_positions, 65_536), "vocab_size": (config.vocab_size, 1_000_000)}
    for name, (value, limit) in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise ValueError(f"{name} must be a whole number from 1 to {limit}, got {value!r}")
    if config.n_embd % config.n_head:
        raise ValueError(f"n_embd ({config.n_embd}) must be a multiple of n_head ({config.n_head})")
    if not isinstance(config.activation_function, str) or config.activation_function not in ACT2FN:
        raise ValueError(f"activation_function must be one of transformers' ({', '.join(sorted(ACT2FN))}), got "
                         f"{config.activation_function!r}")
    eps = config.layer_norm_epsilon
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps <= 0.01:
        raise ValueError(f"layer_norm_epsilon must be a small number above 0 (at most 0.01), got {eps!r}")
    for name in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
        p = getattr(config, name)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"{name} must be a dropout probability from 0 up to (not including) 1, got {p!r}")
