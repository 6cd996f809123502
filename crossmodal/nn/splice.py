"""LLaVA's splice: the image's projected patch embeddings written into the text's sequence at its <image> tokens.

The processor turns the one <image> of a user's turn into N <image> tokens, one per patch embedding
(tokenizer.expand_image_tokens); the decoder embeds the tokens as usual, then overwrites the rows that hold the
<image> id with the N embeddings, in order. transformers' LlavaForConditionalGeneration and nanoVLM do it in
one line:

    inputs_embeds = inputs_embeds.masked_scatter(input_ids == image_token_id, image_features)

Everything else is an ordinary causal language model: the image tokens take ordinary positions (they count in
block_size), there is no cross-attention, and a sequence without an <image> token is plain text. With the
placeholders first, it is the prefix decoder of fusion.py; the chat template puts them in the user's turn.

Generation reads a prompt in pieces (a first call, then one token per step, with a KV cache): the cache keeps
which positions held the image (KVCache.image_keys), so that the k-th placeholder of a row takes the image's
k-th embedding whichever call reads it, and so that the maps can say how the text looked at those positions.
"""

import torch
import torch.nn.functional as F


def splice_image(embeds, is_image, memory, read=None):
    """embeds (B, T, dim) with its rows where is_image (B, T) is True replaced by memory's rows (B, N, dim), in order.

    read (B,): how many image rows each batch row took in earlier calls (a cached generation; default none), so that
    this call's first placeholder of row b takes memory[b, read[b]]. Raises ValueError for placeholders without an
    image, or more of them in a row than the image has embeddings.
    """
    counts = is_image.sum(dim=1)  # (B,)
    if not bool(counts.any()):
        return embeds  # text only: a plain causal LM
    if memory is None:
        raise ValueError("the tokens hold <image> placeholders but no image was given: pass memory, the image's "
                         "projected patch embeddings")
    read = counts.new_zeros(counts.shape) if read is None else read
    if bool((read + counts > memory.size(1)).any()):
        raise ValueError(f"a row holds more <image> tokens than the image has patch embeddings ({memory.size(1)}): "
                         "expand each <image> into exactly that many (tokenizer.expand_image_tokens)")
    rows, columns = is_image.nonzero(as_tuple=True)  # every placeholder, row by row, left to right
    order = read[rows] + is_image.cumsum(dim=1)[rows, columns] - 1  # a row's k-th placeholder takes its k-th row
    features = memory[rows, order].to(embeds.dtype)  # (placeholders, dim), in the mask's reading order
    return embeds.masked_scatter(is_image[..., None], features)  # LLaVA's line; the mask broadcasts over dim


def check_placeholders(tokens, image_id, count):
    """Refuse a whole sequence (B, T) whose rows hold neither none nor exactly `count` <image> tokens (LLaVA's
    "image features and image tokens do not match")."""
    found = (tokens == image_id).sum(dim=1)  # (B,)
    wrong = ((found != 0) & (found != count)).nonzero().flatten().tolist()
    if wrong:
        raise ValueError(f"row {wrong[0]} holds {int(found[wrong[0]])} <image> tokens; a row holds the image's "
                         f"{count} or none: expand each <image> into {count} (tokenizer.expand_image_tokens)")


def image_maps(weights, image_keys, count):
    """How each query looked at the image: (B, H, T, count), the weights on the image's positions in order,
    renormalised to sum to 1 like a cross-attention map (the text also attends to text, which these maps leave
    out); 0 for a query that sees none of them (a token before the image, or a row without one).

    weights (B, H, T, S): self-attention of T queries over S keys; image_keys (B, S): True at the image's positions,
    at most `count` per row (fewer while a prompt is still being read).
    """
    B, H, T, S = weights.shape
    if S < count:  # so few keys yet that the image cannot all be among them: pad, the padding is no image
        weights, image_keys = F.pad(weights, (0, count - S)), F.pad(image_keys, (0, count - S))
    columns = image_keys.int().sort(dim=1, descending=True, stable=True).indices[:, :count]  # (B, count): image first
    seen = image_keys.gather(1, columns)  # (B, count): False where a row has read fewer image tokens so far
    picked = weights.gather(3, columns[:, None, None].expand(B, H, T, count)) * seen[:, None, None]
    return picked / picked.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(picked.dtype).tiny)
