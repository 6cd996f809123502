"""The largest model and batch that will be built: what does not fit the machine's memory is refused, with the number.

A model asked for (by flags, or by a checkpoint's config.json) is first built on PyTorch's meta device, which
gives every tensor's shape and type and allocates nothing, so its parameters are counted before a byte is spent.
What is needed is then compared with what the device has free:

    loading       the parameters and buffers, once
    training      each parameter 4 times (the weight, its gradient, AdamW's two moments; a frozen one once), and
                  the first batch: its images, and at least ACTIVATIONS numbers per position, per layer and per
                  unit of width (what each layer keeps for the backward pass), and the logits twice
    beam search   every beam's copy of the image tokens, its cache of keys and values, its logits

Each is a lower bound: what it refuses certainly does not fit; what it lets through may still be tight.
"""

import os

import torch

from .layers import pair
from .vit import VisionTransformer

ACTIVATIONS = 4  # numbers kept per position, layer and unit of width: a block keeps more (its MLP's hidden layer,
# the attention's queries, keys, values and weights), so 4 is well under what training really holds


def available_memory(device="cpu"):
    """Bytes this process can still allocate on `device`: a GPU's free memory, or the machine's available memory
    (Linux's MemAvailable; elsewhere all of it); None when it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0]
        except (RuntimeError, AssertionError, ValueError):  # no GPU or driver here: moving the model will say so
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(needed, what, device="cpu"):
    """Raise ValueError when `needed` bytes are more than `device` has free. what: the start of the sentence, e.g.
    "--batch-size 1048576 of this model"."""
    free = available_memory(device)
    if free is not None and needed > free:
        where = "free on the GPU" if torch.device(device).type == "cuda" else "free on this machine"
        raise ValueError(f"{what} needs at least {gib(needed)} of memory, and {gib(free)} is {where}: make it smaller")


def gib(count):
    return f"{count / 2**30:,.1f} GiB"


def model_bytes(model):
    """The bytes of a model's parameters and buffers (a meta model's too: nothing is allocated to count them)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def training_bytes(model, batch_size):
    """A lower bound of what one training step of `model` (a VisionLanguageModel or a GPT-2, built on the meta device
    or not) holds: its weights, gradients and AdamW moments, and a first batch of `batch_size` examples."""
    learning = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return model_bytes(model) + 3 * learning + 4 * batch_size * numbers_per_example(model)


def numbers_per_example(model):
    """The numbers one example keeps at least through a training step: its pixels, ACTIVATIONS per position, layer
    and unit of width in every part, and its logits with their gradient."""
    config = model.config
    if hasattr(config, "vision"):  # a VisionLanguageModel: the encoder over the patches, the decoder over the text
        v, d = config.vision, config.decoder
        (h, w), (gh, gw) = pair(v.image_size), model.encoder.grid_size
        text = d.block_size + model.decoder.image_tokens  # a prefix design reads the patches in the decoder too
        seen = gh * gw * v.depth * v.dim if isinstance(model.encoder, VisionTransformer) else 0  # raw, timm: not ours
        kept = seen + text * d.depth * d.dim
        return v.in_chans * h * w + ACTIVATIONS * kept + 2 * d.block_size * d.vocab_size
    c = config  # a GPT-2's
    return ACTIVATIONS * c.n_positions * c.n_layer * c.n_embd + 2 * c.n_positions * c.vocab_size


def beam_bytes(batch, num_beams, image_tokens, width, layers, block_size, vocab):
    """A lower bound of what beam search holds at once: per beam, the image tokens, the keys and values of every
    layer for block_size positions, and three rows of the vocabulary (logits, log-probabilities, candidates)."""
    per_beam = image_tokens * width + 2 * layers * block_size * width + 3 * vocab
    return 4 * batch * num_beams * per_beam
