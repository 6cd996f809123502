"""A language model that knows facts about numbers from text alone: the LM that flamingo.py gives eyes to.

Offline, it is a small transformers GPT2LMHeadModel (`tiny_config`) with a character tokenizer
(tokenizer.build_char_tokenizer), pretrained here on facts.py's sentences. With the internet, `hub=True`
loads the real GPT-2 (124M parameters) and its BPE tokenizer instead. Both are a GPT2LMHeadModel and a
transformers tokenizer, so everything after loading is one code path: `encode` (each text as
bos + text + eos, whichever tokenizer), `pretrain`, `complete`, `fact_accuracy`, and flamingo.Flamingo.

    python -m crossmodal.text_lm --out runs/text-lm

Measured (one CPU thread, AVX2, beside other jobs): 800 steps (the default), about 3 minutes, 98.8% of the
170 trained facts right and none of the 14 held out (it learns facts by heart: a held-out sum is not
worked out); 600 steps, 2.5 minutes, 92.4%.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

from .facts import all_facts, corpus, held_out_facts
from .tokenizer import build_char_tokenizer

HUB_NAME = "gpt2"  # the smallest GPT-2 on the Hugging Face hub


def tiny_config(vocab_size, n_positions=64, n_embd=96, n_layer=4, n_head=4, **kwargs):
    """A GPT-2 of the same architecture at a size a CPU trains in minutes (64 positions: every fact fits)."""
    return GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **kwargs)  # no dropout: small, clean data


def build_text_lm(hub=False, texts=None, seed=0, **config):
    """(lm, tokenizer): a fresh tiny GPT-2 with a character tokenizer over `texts` (default: every fact's
    characters), or with hub=True the pretrained GPT-2 and its tokenizer (needs the internet; config unused).

    config: tiny_config's sizes (n_embd, n_layer, ...). seed: the fresh model's initial weights.
    """
    if hub:
        lm, tokenizer = GPT2LMHeadModel.from_pretrained(HUB_NAME), GPT2TokenizerFast.from_pretrained(HUB_NAME)
    else:
        tokenizer = build_char_tokenizer(all_facts() if texts is None else texts)
        ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)  # no pad: see encode
        with torch.random.fork_rng(devices=[]):  # the caller's random stream stays as it was
            torch.manual_seed(seed)
            lm = GPT2LMHeadModel(tiny_config(len(tokenizer), **ids, **config))
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs a bos and an eos token: encode() puts one at each end of a text")
    return named_loss(lm).eval(), tokenizer


def named_loss(lm):
    """The LM with its loss named: transformers cannot guess it from the class name "GPT2LMHeadModel" and
    warns at the first loss otherwise. Returns lm."""
    lm.loss_type = "ForCausalLM"
    return lm


def encode(tokenizer, texts, eos=True):
    """(ids, labels), each (B, T): every text as bos + its tokens (+ eos), padded on the right.

    The bos and eos are added here, not by the tokenizer: the character tokenizer would add them itself,
    GPT-2's adds neither (its bos and eos are the same token, <|endoftext|>). labels are the ids with -100 on
    the padding, which GPT-2's loss ignores. No attention mask is needed: the padding comes after the text and
    causal attention never looks ahead. eos=False leaves a text open (a caption the LM goes on from).
    """
    rows = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    rows = [[tokenizer.bos_token_id] + row + ([tokenizer.eos_token_id] if eos else []) for row in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id  # GPT-2 has none
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = labels[i, : len(row)] = torch.tensor(row)
    return ids, labels


def pretrain(lm, tokenizer, steps=800, batch_size=32, lr=3e-3, seed=0, log_every=0):
    """Train `lm` on fresh facts.corpus sentences every step; returns the loss of each step.

    AdamW with a cosine decay to a tenth of lr. The batches come from torch.Generator(seed): the same run
    every time.
    """
    device, generator = next(lm.parameters()).device, torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.01)
    cosine = lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))  # noqa: E731  (1 → 0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    lm.train()
    losses = []
    for step in range(steps):
        ids, labels = encode(tokenizer, corpus(batch_size, generator))
        loss = lm(input_ids=ids.to(device), labels=labels.to(device)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: loss {sum(losses[-log_every:]) / log_every:.4f}")
    lm.eval()
    return losses


@torch.inference_mode()
def complete(lm, tokenizer, prompt, max_new_tokens=32):
    """The LM's greedy continuation of `prompt` (text after bos), up to its eos: complete(lm, tok, "seven is")
    -> " odd." once it has learnt the facts."""
    ids = encode(tokenizer, [prompt], eos=False)[0].to(next(lm.parameters()).device)  # (1, T)
    new = []
    for _ in range(min(max_new_tokens, lm.config.n_positions - ids.size(1))):
        next_id = lm(input_ids=ids).logits[0, -1].argmax()
        if next_id.item() == tokenizer.eos_token_id:
            break
        new.append(next_id.item())
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    return tokenizer.decode(new, skip_special_tokens=True)


def split_fact(sentence):
    """(prompt, answer): a fact cut before its last word, "seven plus one is" + " eight."."""
    i = sentence.rindex(" ")
    return sentence[:i], sentence[i:]


def fact_accuracy(lm, tokenizer, facts):
    """Share of `facts` whose last word the LM writes, greedy, after the rest (up to the full stop)."""
    right = 0
    for fact in facts:
        prompt, answer = split_fact(fact)
        right += complete(lm, tokenizer, prompt).split(".")[0] + "." == answer
    return right / len(facts)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Pretrain a GPT-2 on facts about numbers (text only).")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hub", action="store_true", help="start from the hub's GPT-2 (needs the internet)")
    parser.add_argument("--out", help="folder to save the LM, its tokenizer and training.json in")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lm, tokenizer = build_text_lm(hub=args.hub, seed=args.seed)
    start = time.perf_counter()
    losses = pretrain(lm, tokenizer, args.steps, args.batch_size, args.lr, args.seed,
                      log_every=max(1, args.steps // 10))
    seconds = time.perf_counter() - start
    seen = [f for f in all_facts() if f not in set(held_out_facts())]
    accuracy = {"trained": fact_accuracy(lm, tokenizer, seen),
                "held_out": fact_accuracy(lm, tokenizer, held_out_facts())}
    print(f"facts right: trained {accuracy['trained']:.1%}, held out {accuracy['held_out']:.1%}")
    if args.out:
        lm.save_pretrained(args.out)
        tokenizer.save_pretrained(args.out)
        record = {"command": "python -m crossmodal.text_lm " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "cpu": torch.backends.cpu.get_cpu_capability(), "facts_right": accuracy,
                  "loss": [round(x, 4) for x in losses]}
        (Path(args.out) / "training.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
