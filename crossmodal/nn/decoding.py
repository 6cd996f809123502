"""How a decoder writes: greedy decoding, sampling and beam search, over a batch of images.

`sample` writes token by token: at each step the decoder reads what each row has so far (with a KV
cache, only the newest token) and the next token is the most likely one (temperature 0) or drawn from
the softmax (temperature > 0, optionally from the top_k only). Rows may start from prompts of different
lengths: a row with a longer prompt goes on reading it while shorter ones already write, so each row is
written exactly as it would be alone.

Beam search: keep the `num_beams` likeliest captions so far, not only the likeliest next character.
Greedy decoding takes the most likely character at each step, and that need not give the most likely
caption: a character that looks less likely now can lead to a whole caption that is likelier. Beam search
keeps `num_beams` sequences ("beams") per image. At each step every beam is extended by every token of the
vocabulary, each extension is scored by the log-probability of the whole sequence so far,

    score(t1 … tn) = log p(t1) + log p(t2 | t1) + … + log p(tn | t1 … tn-1),

and the best `num_beams` of all those extensions are kept. With one beam it is greedy decoding.

Length: a beam that has written <eos> is finished. It stays among the beams with its score, extended only by
<pad> at no cost, so a short caption that is finished competes with longer ones still being written (whose
scores can only fall, as each token adds a log-probability ≤ 0). There is no length penalty: the score is the
sequence's log-probability, so with enough beams to keep every candidate, beam search returns exactly what an
exhaustive search over all sequences returns (tests/test_beam_search.py checks that on a tiny vocabulary).
"""

import math

import torch

from .decoder import KVCache


@torch.inference_mode()
def sample(decoder, memory, starts, max_new_tokens, eos_id, pad_id, temperature=0.0, top_k=None, generator=None,
           use_cache=True, return_attention=False):
    """Write a batch token by token: (tokens, maps, probs).

    tokens (B, T): the new token ids, each row <eos>-terminated then <pad>. maps (B, T, layers, heads, N), with
    return_attention (else None): how each written token looked at the image. probs (B, T): the probability the
    model gave each token it wrote (0 after the row's end): how sure it was.
    decoder: a Decoder; memory (B, N, dim): the images' patch embeddings (VisionLanguageModel.encode_images).
    starts: B lists of token ids each row reads first (<bos> + its prompt), of any lengths.
    max_new_tokens: (B,) new tokens each row may write at most (its room in block_size, or the caller's limit).
    """
    B, device = memory.size(0), memory.device
    lengths = torch.tensor([len(r) for r in starts], device=device)  # (B,)
    longest = int(lengths.max())
    forced = torch.tensor([r + [pad_id] * (longest - len(r)) for r in starts], device=device)  # (B, P_max)
    pos = int(lengths.min())  # the position of the next token
    tokens = forced[:, :pos]  # (B, P_min): what every row reads before anything is written
    cache = KVCache(decoder.cfg.depth) if use_cache else None
    written = torch.zeros(B, dtype=torch.long, device=device)  # new tokens per row so far
    finished = written >= max_new_tokens  # (B,); all True when max_new_tokens is 0
    out, maps, probs = [], [], []
    while not finished.all():
        if return_attention:
            logits, weights = decoder(tokens, memory, cache, need_weights=True)
            maps.append(torch.stack([w[:, :, -1] for w in weights], dim=1) if weights  # (B, L, H, N)
                        else memory.new_zeros(B, 0, decoder.cfg.num_heads, memory.size(1)))  # blind: L = 0
        else:
            logits = decoder(tokens, memory, cache)  # (B, T, vocab); with a cache, T = the newest only
        last = never_a_placeholder(decoder, logits[:, -1])  # (B, vocab)
        next_token = pick_next_token(last, temperature, top_k, generator)  # (B,)
        probs.append(last.float().softmax(-1).gather(1, next_token[:, None]).squeeze(1))  # (B,)
        reading = pos < lengths  # rows still inside their prompt take the prompt's token
        next_token = torch.where(reading, forced[:, min(pos, longest - 1)], next_token)
        next_token = next_token.masked_fill(finished, pad_id)
        out.append(next_token)
        written += ~reading
        finished |= ~reading & ((next_token == eos_id) | (written >= max_new_tokens))
        tokens = next_token[:, None] if use_cache else torch.cat([tokens, next_token[:, None]], dim=1)
        pos += 1

    steps = torch.stack(out, dim=1) if out else forced.new_zeros(B, 0)  # (B, S); S = 0 if max_new_tokens is 0
    shift = lengths - lengths.min()  # (B,): the steps each row spent reading its prompt
    generated = left_align(steps, shift, written, pad_id)  # (B, T): each row's new tokens
    probs = left_align(torch.stack(probs, dim=1) if probs else memory.new_zeros(B, 0), shift, written, 0.0)  # (B, T)
    if not return_attention:
        return generated, None, probs
    L = decoder.image_layers
    maps = torch.stack(maps, dim=1) if maps else memory.new_zeros(B, 0, L, decoder.cfg.num_heads, memory.size(1))
    return generated, left_align(maps, shift, written, 0.0), probs  # maps (B, T, L, H, N)


def check_beam_settings(num_beams, temperature, top_k, return_attention):
    """Refuse beam-search settings that cannot work, saying why and what to do instead."""
    if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
        raise ValueError(f"num_beams must be a whole number ≥ 1 (1 is greedy decoding), got {num_beams!r}")
    if num_beams > 1 and temperature != 0:
        raise ValueError(f"beam search keeps the most likely sequences, it does not sample: use temperature=0 "
                         f"with num_beams={num_beams}, or num_beams=1 to sample (temperature={temperature!r})")
    if num_beams > 1 and top_k is not None:
        raise ValueError("top_k limits sampling; beam search does not sample: leave top_k=None with num_beams > 1")
    if num_beams > 1 and return_attention:
        raise ValueError("return_attention is for greedy decoding and sampling; to see where the model looks "
                         "while reading a beam-search caption, pass its text to VisionLanguageModel.score(image, text)")


@torch.inference_mode()
def beam_search(decoder, memory, starts, num_beams, max_new_tokens, eos_id, pad_id, use_cache=True):
    """The likeliest sequence found for each image, and its score.

    decoder: a Decoder; memory (B, N, dim): the images' patch embeddings (VisionLanguageModel.encode_images).
    starts: B lists of token ids that every beam reads first (<bos> + prompt), all of one length.
    max_new_tokens: at most this many new tokens per sequence (an <eos> ends one sooner).
    Returns tokens (B, T), each row <eos>-terminated (unless it ran out of tokens) then <pad>, as
    VisionLanguageModel.generate writes them, and scores (B,): each row's log-probability, <eos> included.
    """
    if len({len(s) for s in starts}) > 1:
        raise ValueError("beam search reads one prompt length for every image; give prompts of equal length, "
                         "or generate the images with different prompt lengths one at a time")
    B, k, device = memory.size(0), num_beams, memory.device
    memory = memory.repeat_interleave(k, dim=0)  # (B·k, N, dim): beam j of image b is row b·k + j
    tokens = torch.tensor(starts, device=device).repeat_interleave(k, dim=0)  # (B·k, P): what each beam has read
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the k beams start as one and the same: keep one, or the best k would be k copies of it
    finished = torch.zeros(B * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(B * k, dtype=torch.long, device=device)  # tokens written before finishing, <eos> included
    written = tokens.new_zeros(B * k, 0)  # (B·k, t): the new tokens of each beam
    cache = KVCache(decoder.cfg.depth) if use_cache else None
    step_input = tokens
    first_row = torch.arange(B, device=device)[:, None] * k  # (B, 1): each image's first row
    for _ in range(max_new_tokens):
        if finished.all():
            break
        logits = decoder(step_input, memory, cache)[:, -1]  # (B·k, vocab); with a cache, only the newest token
        logits = never_a_placeholder(decoder, logits)
        V = logits.size(-1)
        logp = logits.float().log_softmax(dim=-1)  # (B·k, V): log p(next token | the beam so far)
        logp[finished] = float("-inf")  # a finished beam is extended by <pad> only, at no cost
        logp[finished, pad_id] = 0.0
        candidates = (scores.view(-1, 1) + logp).view(B, k * V)  # every beam × every token, per image
        scores, best = candidates.topk(k, dim=-1)  # (B, k): the k best extensions of each image's beams
        source = (first_row + best // V).flatten()  # (B·k,): the row of the beam each new beam extends
        token = (best % V).flatten()  # (B·k,): the token it adds
        lengths = lengths[source] + ~finished[source]
        finished = finished[source] | (token == eos_id) | (scores.flatten() == float("-inf"))
        written = torch.cat([written[source], token[:, None]], dim=1)
        if use_cache:
            cache.reorder(source)  # each new beam continues the keys and values of the beam it extends
            step_input = token[:, None]
        else:
            tokens = torch.cat([tokens[source], token[:, None]], dim=1)
            step_input = tokens

    top = scores.argmax(dim=-1)  # (B,): the best beam of each image
    rows = first_row.flatten() + top
    T = int(lengths[rows].max()) if B else 0
    keep = torch.arange(T, device=device) < lengths[rows, None]  # (B, T)
    return written[rows, :T].masked_fill(~keep, pad_id), scores.gather(1, top[:, None]).squeeze(1)


def check_generation(max_new_tokens, temperature, top_k, room):
    """Refuse generation settings that cannot work, saying why. room: the new tokens the longest row has room for."""
    if room < 0:
        raise ValueError(f"the prompt does not fit: with <bos> it is {-room} tokens longer than block_size")
    if max_new_tokens is None:
        max_new_tokens = room
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number ≥ 0, got {max_new_tokens!r}")
    if max_new_tokens > room:
        raise ValueError(f"max_new_tokens={max_new_tokens} does not fit: <bos>, the prompt and the new tokens must "
                         f"fit in block_size, which leaves room for {max(room, 0)} new tokens")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number ≥ 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be None (no limit) or a whole number ≥ 1, got {top_k!r}")


def never_a_placeholder(decoder, logits):
    """logits (B, vocab) with a splice decoder's <image> token made impossible: it reads the image's placeholders,
    and writing one would ask for an image row that does not exist (splice.py)."""
    if getattr(decoder, "image_token_id", None) is None:
        return logits
    return logits.index_fill(-1, torch.tensor([decoder.image_token_id], device=logits.device), float("-inf"))


def pick_next_token(logits, temperature=0.0, top_k=None, generator=None):
    """(B, vocab) logits -> (B,) token ids: the most likely (temperature 0), or one drawn from the softmax of
    logits / temperature, among the top_k most likely if given."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


def left_align(steps, shift, count, pad):
    """steps (B, S, ...) -> (B, T, ...): row i's `count[i]` values from step `shift[i]` on, then `pad`."""
    T = int(count.max())
    extra = [1] * (steps.dim() - 2)  # the trailing dims, for broadcasting
    index = (shift[:, None] + torch.arange(T, device=steps.device)).clamp(max=steps.size(1) - 1)  # (B, T)
    index = index.view(*index.shape, *extra).expand(-1, -1, *steps.shape[2:])
    keep = (torch.arange(T, device=steps.device) < count[:, None]).view(len(count), T, *extra)
    return steps.gather(1, index).masked_fill(~keep, pad)


def until_eos(ids, eos_id, pad_id):
    if eos_id in ids:
        return ids[: ids.index(eos_id)]
    while ids and ids[-1] == pad_id:  # no <eos>: it ran out of room, and the batch's padding follows
        ids = ids[:-1]
    return ids
