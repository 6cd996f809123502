"""Start a new model from a trained one wherever their weights fit, e.g. the question answerer from the reader.

`--init-from` continues a checkpoint with its own model and tokenizer. A new task often needs a model that is
*almost* the same: more characters (the questions' letters), a longer text (the question before the answer).
`warm_start` copies what carries over:

- a tensor of the same name and shape is copied as it is (the vision encoder, the projector, the blocks);
- the token table (tied to the output layer) is copied row by row for every token both tokenizers know,
  matched by its string, not its id: the new tokens keep their fresh initialisation;
- the decoder's position table is copied for the positions both have (the first ones).

Anything else is left as initialised and named in the returned report, so a run's record says what it reused.
"""

import torch

TOKEN_TABLES = ("decoder.wte.weight", "decoder.lm_head.weight")  # (vocab, dim); tied, so one shared tensor
POSITIONS = "decoder.wpe.weight"  # (image tokens + block size, dim)


@torch.no_grad()
def warm_start(model, source):
    """Copy into `model` every weight of `source` that fits; returns {"copied", "tokens", "positions", "skipped"}."""
    if model.config.fusion != source.config.fusion:
        raise ValueError(f"cannot warm-start a {model.config.fusion!r} model from a {source.config.fusion!r} one: "
                         "their weights mean different things")
    ours_dim, theirs_dim = model.config.decoder.dim, source.config.decoder.dim
    if ours_dim != theirs_dim:  # no token, position or block of another width fits: say so rather than copy nothing
        raise ValueError(f"cannot warm-start: the checkpoint's decoder is {theirs_dim} wide and the new model's "
                         f"{ours_dim}; give --decoder.dim {theirs_dim} (or start from a checkpoint {ours_dim} wide)")
    theirs, ours = source.state_dict(), model.state_dict()
    new_vocab, old_vocab = model.tokenizer.get_vocab(), source.tokenizer.get_vocab()
    shared = sorted(t for t in new_vocab if t in old_vocab)
    rows_new = torch.tensor([new_vocab[t] for t in shared], dtype=torch.long)
    rows_old = torch.tensor([old_vocab[t] for t in shared], dtype=torch.long)
    same_image_tokens = model.decoder.image_tokens == source.decoder.image_tokens  # else positions mean others
    report = {"copied": 0, "tokens": len(shared), "positions": 0, "skipped": []}
    for name, tensor in ours.items():
        if name not in theirs:
            report["skipped"].append(name)
        elif name in TOKEN_TABLES:
            tensor[rows_new] = theirs[name][rows_old].to(tensor.dtype)
        elif name == POSITIONS:  # row i is position i only if both put the same number of image tokens first
            if tensor.shape[1:] != theirs[name].shape[1:] or not same_image_tokens:
                report["skipped"].append(name)
                continue
            n = min(len(tensor), len(theirs[name]))
            tensor[:n] = theirs[name][:n]
            report["positions"] = n
        elif tensor.shape == theirs[name].shape:
            tensor.copy_(theirs[name])
            report["copied"] += 1
        else:
            report["skipped"].append(name)
    return report
