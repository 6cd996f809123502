"""Give the text LM eyes: train a Flamingo (flamingo.py) on image captions only; save and load it.

    python -m crossmodal.eyes --out runs/eyes                    # gated layers in the frozen text LM
    python -m crossmodal.eyes --from-scratch --out runs/scratch  # the control: same shape, LM learnt from zero

The language model is the shipped text LM (checkpoints/text-lm: text_lm.py pretrained it on facts.py's
sentences). The eyes are the shipped captioner's ViT encoder (notebook 05), frozen as Flamingo froze its
NFNet: only the projector and the gated layers learn. They learn from "This is the number seven." and
nothing else, written without an eos, so the LM's own sentence can go on after the caption (transfer.py
measures what it then says).

The control (`from_scratch=True`) is what a captioner trained from scratch is: the same encoder, projector
and layers, but its GPT-2 starts random and learns from the captions too, with plain residuals (no gates:
there is nothing to protect). It never read a fact.
"""

import argparse
import copy
import json
import math
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_model
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from .checkpoint import CONFIG, RECORD, TOKENIZER, WEIGHTS, check_shapes, load_weights, read_json, replacing
from .config import VisionConfig
from .data import ALL_CAPTIONS, caption_for, load_mnist
from .facts import training_facts
from .flamingo import Flamingo
from .text_lm import encode, named_loss
from .vit import VisionTransformer

UNRELATED_FAMILIES = ("after", "before", "plus", "parity")
# what fits in the text LM's 64 positions: bos, the longest caption, a space, the sentence, eos
MAX_FOLLOWING = 64 - 1 - max(len(c) for c in ALL_CAPTIONS) - 1 - 1


def build_eyes(lm, encoder, from_scratch=False, cross_attention_every=2, seed=0):
    """The gated Flamingo around the frozen `lm` with the frozen `encoder`; or, from_scratch, the control: a
    random GPT-2 of lm's config that trains with the new (ungated) layers. New weights from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if from_scratch:
            lm = named_loss(GPT2LMHeadModel(copy.deepcopy(lm.config)))
        return Flamingo(lm, encoder, cross_attention_every, gated=not from_scratch, freeze_encoder=True,
                        freeze_lm=not from_scratch)


def caption_batch(tokenizer, digits, followed_by=None):
    """(ids, labels), each (B, T): bos + caption of each digit, no eos: the sentence may go on.

    followed_by: one sentence per caption to write after it (then an eos), e.g. `unrelated_sentences`."""
    captions = [caption_for(d) for d in digits.tolist()]
    if followed_by is None:
        return encode(tokenizer, captions, eos=False)
    return encode(tokenizer, [f"{c} {s}" for c, s in zip(captions, followed_by)])


def unrelated_sentences(n, generator, room=MAX_FOLLOWING):
    """n sentences the LM has read that say nothing about "it" (facts.py's after, before, plus and parity
    families, at most `room` characters), drawn uniformly with `generator`."""
    pool = [s for family in UNRELATED_FAMILIES for s in training_facts(family) if len(s) <= room]
    return [pool[i] for i in torch.randint(len(pool), (n,), generator=generator).tolist()]


def caption_and_keep_loss(model, images, ids, labels, caption_lengths):
    """Cross-entropy on each caption's tokens, plus, on every position after the caption, KL(the LM alone ‖ the
    model): the model is asked to predict there exactly what the frozen LM predicts without the image.

    ids, labels (B, T) as caption_batch gives them (a sentence after each caption); caption_lengths (B,): the
    caption's token count. Position t predicts token t + 1, so positions 0 … length-1 write the caption.
    """
    logits = model(images, ids)[:, :-1]  # (B, T-1, vocab)
    with torch.no_grad():
        alone = model.lm(input_ids=ids).logits[:, :-1]  # no image: every FlamingoLayer lets the text through
    targets = labels[:, 1:].to(logits.device)  # (B, T-1): the token each position predicts
    positions = torch.arange(targets.size(1), device=targets.device)
    on_caption = positions[None] < caption_lengths[:, None].to(targets.device)  # (B, T-1)
    after = ~on_caption & (targets != -100)
    caption_loss = F.cross_entropy(logits[on_caption], targets[on_caption])
    keep = F.kl_div(logits[after].log_softmax(-1), alone[after].log_softmax(-1), log_target=True,
                    reduction="batchmean")
    return caption_loss + keep


def train_on_captions(model, tokenizer, images, digits, steps=600, batch_size=64, lr=2e-3, seed=0, log_every=0,
                      keep_text=True):
    """Train the model's trainable parameters on (image, caption) pairs; returns the history:
    {"loss": [one per step], "gates": [tanh of every gate, (layers, 2), one per step] or None if ungated}.

    keep_text: each caption is followed by an unrelated sentence the LM has read (`unrelated_sentences`:
    drawn apart from the image, it says nothing about the digit), and on it the model learns to predict what
    the LM alone predicts (`caption_and_keep_loss`). Trained on captions alone, the new layers never see a
    position after a caption, and what they add there garbles the LM's next sentence (measured: README,
    notebook 10). Trained to copy those sentences instead (cross-entropy), they learn that a caption is
    followed by a random sentence, and garble that. Keeping the LM's own predictions teaches them one thing
    only: where the image has nothing to add, add nothing.

    AdamW, a linear warm-up over the first 5% of steps, then a cosine to a tenth of lr. Batches are drawn
    with torch.Generator(seed): the same run every time.
    """
    device, generator = model.device, torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps))))
    caption_lengths = torch.tensor([len(tokenizer(caption_for(d), add_special_tokens=False)["input_ids"])
                                    for d in range(10)])
    history = {"loss": [], "gates": [] if model.gates() is not None else None}
    model.train()
    for step in range(steps):
        pick = torch.randint(len(digits), (batch_size,), generator=generator)
        if keep_text:
            ids, labels = caption_batch(tokenizer, digits[pick], unrelated_sentences(batch_size, generator))
            loss = caption_and_keep_loss(model, images[pick], ids, labels, caption_lengths[digits[pick]])
        else:
            ids, labels = caption_batch(tokenizer, digits[pick])
            loss = model(images[pick], ids, labels=labels.to(device))[1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        history["loss"].append(loss.item())
        if history["gates"] is not None:
            history["gates"].append(model.gates().tolist())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: loss {sum(history['loss'][-log_every:]) / log_every:.4f}", flush=True)
    model.eval()
    return history


def save_eyes(model, tokenizer, folder, record=None):
    """A folder with the whole model (model.safetensors), what rebuilds it (config.json), the tokenizer and,
    if given, how it was trained (training.json). Written as a unit (checkpoint.replacing)."""
    if not isinstance(model.encoder, VisionTransformer):
        raise ValueError("save_eyes saves crossmodal's VisionTransformer encoder; a timm or OpenCLIP encoder is "
                         "rebuilt from its own name: save the state_dict yourself")
    config = {"lm": model.lm.config.to_dict(), "vision": asdict(model.encoder.config),
              "cross_attention_every": model.cross_attention_every, "gated": model.gates() is not None,
              "freeze_lm": model.freeze_lm}
    with replacing(folder) as new:
        save_model(model, str(new / WEIGHTS))  # the tied lm_head is stored once
        (new / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        tokenizer.save_pretrained(new)
        if record is not None:
            (new / RECORD).write_text(json.dumps(record, indent=2) + "\n")


def load_eyes(folder, device="cpu"):
    """(model, tokenizer) from a save_eyes folder, every file checked first; eval mode, offline."""
    folder = Path(folder)
    missing = [f for f in (WEIGHTS, CONFIG, TOKENIZER) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a saved Flamingo: missing {missing}; expected what "
                                "eyes.save_eyes writes")
    config = read_json(folder / CONFIG)
    try:
        lm = named_loss(GPT2LMHeadModel(GPT2Config.from_dict(config["lm"])))
        encoder = VisionTransformer(VisionConfig(**config["vision"]))
        model = Flamingo(lm, encoder, config["cross_attention_every"], gated=config["gated"], freeze_encoder=True,
                         freeze_lm=config["freeze_lm"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{folder / CONFIG} does not describe a Flamingo that can be built: {err!r}") from None
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    if len(tokenizer) != lm.config.vocab_size:
        raise ValueError(f"the tokenizer in {folder} has {len(tokenizer)} tokens but the LM {lm.config.vocab_size}: "
                         "the files come from different checkpoints")
    check_shapes(folder / WEIGHTS, {name: tuple(t.shape) for name, t in model.state_dict().items()})
    load_weights(model, folder / WEIGHTS)
    return model.to(device).eval(), tokenizer


def main(argv=None):
    from .pretrained import load_pretrained, load_text_lm
    from .transfer import measure_transfer

    p = argparse.ArgumentParser(prog="python -m crossmodal.eyes", description="Train gated cross-attention into the "
                                "frozen text LM on MNIST captions only, then measure what transfers.")
    p.add_argument("--out", required=True, help="folder for the trained model")
    p.add_argument("--lm", default=None, metavar="FOLDER", help="the language model to give eyes: a folder "
                   "`python -m crossmodal.text_lm --out` wrote (default: the shipped text LM)")
    p.add_argument("--from-scratch", action="store_true", help="the control: a random LM that learns the captions")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--cross-attention-every", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--test-every", type=int, default=1, help="measure transfer on every n-th MNIST test image")
    p.add_argument("--captions-only", action="store_true",
                   help="train on the captions alone, with no unrelated sentence after each (see train_on_captions)")
    args = p.parse_args(argv)
    try:
        train_images, train_digits = load_mnist(train=True)
        test_images, test_digits = load_mnist(train=False)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    if args.threads:
        torch.set_num_threads(args.threads)
    lm, tokenizer = load_text_lm(folder=args.lm)
    model = build_eyes(lm, load_pretrained().encoder, args.from_scratch, args.cross_attention_every, args.seed)
    start = time.perf_counter()
    history = train_on_captions(model, tokenizer, train_images, train_digits, args.steps, args.batch_size, args.lr,
                                args.seed, log_every=max(1, args.steps // 10), keep_text=not args.captions_only)
    seconds = time.perf_counter() - start
    test = slice(None, None, args.test_every)
    results = measure_transfer(model, tokenizer, test_images[test], test_digits[test])
    print(json.dumps(results, indent=2))
    record = {"command": "python -m crossmodal.eyes " + " ".join(argv if argv is not None else sys.argv[1:]),
              "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu": torch.backends.cpu.get_cpu_capability(), "platform": platform.processor() or platform.machine(),
              "transfer": results, "loss": [round(x, 4) for x in history["loss"]],
              "gates": history["gates"] and [[[round(g, 4) for g in pair] for pair in s] for s in history["gates"]]}
    save_eyes(model, tokenizer, args.out, record)
    print(f"trained {args.steps} steps in {seconds:.0f} s; saved in {args.out}")


if __name__ == "__main__":
    main()
