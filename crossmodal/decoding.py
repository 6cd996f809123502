"""Beam search: keep the `num_beams` likeliest captions so far, not only the likeliest next character.

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

import torch

from .decoder import KVCache


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
                         "while reading a beam-search caption, pass its text to Captioner.score(image, text)")


@torch.inference_mode()
def beam_search(decoder, memory, starts, num_beams, max_new_tokens, eos_id, pad_id, use_cache=True):
    """The likeliest sequence found for each image, and its score.

    decoder: a Decoder; memory (B, N, dim): the images' patch embeddings (Captioner.encode_images).
    starts: B lists of token ids that every beam reads first (<bos> + prompt), all of one length.
    max_new_tokens: at most this many new tokens per sequence (an <eos> ends one sooner).
    Returns tokens (B, T), each row <eos>-terminated (unless it ran out of tokens) then <pad>, as
    Captioner.generate writes them, and scores (B,): each row's log-probability, <eos> included.
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
