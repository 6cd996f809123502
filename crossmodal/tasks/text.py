"""Text: a language model that learns facts about numbers from text alone, the LM that notebook 10 gives eyes.

Offline, it is a small transformers GPT2LMHeadModel (`tiny_config`) with a character tokenizer
(nn.tokenizer.build_char_tokenizer), trained here on data/facts.py's sentences. With the internet, `hub=True`
loads the real GPT-2 (124M parameters) and its BPE tokenizer instead. Both are a GPT2LMHeadModel and a
transformers tokenizer, so everything after loading is one code path: `encode` (each text as
bos + text + eos, whichever tokenizer), `FactBatches` (the stream), `complete`, `fact_accuracy` (the test).

    python -m crossmodal.train --task text --out runs/text-lm
"""

import math
from dataclasses import dataclass

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

from ..data.facts import all_facts, corpus, held_out_facts
from ..nn.auto import named_loss
from ..nn.config import check_gpt2_config
from ..nn.flamingo import CACHE_ARGUMENT
from ..nn.tokenizer import build_char_tokenizer
from ..training.config import TrainConfig
from ..training.loss import next_token_loss
from ..training.streams import Batch
from .task import Task

HUB_NAME = "gpt2"  # the smallest GPT-2 on the Hugging Face hub


@dataclass
class TextLMConfig:
    """The sizes of the tiny GPT-2 (transformers' GPT2Config names); 64 positions: every fact fits."""

    n_embd: int = 96  # width
    n_layer: int = 4  # blocks
    n_head: int = 4  # attention heads per block
    n_positions: int = 64  # longest text, in tokens

    def check(self):
        """The rules a loaded GPT-2 is held to (nn.config.check_gpt2_config), and room for the longest fact."""
        check_gpt2_config(tiny_config(vocab_size=1, n_positions=self.n_positions, n_embd=self.n_embd,
                                      n_layer=self.n_layer, n_head=self.n_head, bos_token_id=0, eos_token_id=0))
        longest = max(len(fact) for fact in all_facts()) + 2  # a token per character, with bos and eos
        if self.n_positions < longest:
            raise ValueError(f"n_positions (--n-positions) must be at least {longest}: the longest fact is "
                             f"{longest} tokens with its bos and eos, got {self.n_positions}")


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
        check_hub()  # offline: a sentence now, not transformers' timeouts
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


class FactBatches:
    """The text stream: fresh data/facts.py sentences for every batch (facts.corpus), drawn from (seed, epoch, i)."""

    def __init__(self, tokenizer, sentences_per_epoch=25_600):
        self.tokenizer, self.sentences_per_epoch = tokenizer, sentences_per_epoch

    def steps_per_epoch(self, batch_size):
        return math.ceil(self.sentences_per_epoch / batch_size)

    def batches(self, epoch, batch_size, seed, start=0):
        for i in range(start, self.steps_per_epoch(batch_size)):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 10_007 + i)
            ids, labels = encode(self.tokenizer, corpus(batch_size, generator))
            yield Batch(None, ids[:, :-1], labels[:, 1:])  # position t predicts token t + 1


def text_loss(model, batch, cfg):
    """The language model's next-token loss (the one convention, training/loss.py)."""
    return next_token_loss(model(input_ids=batch.tokens).logits, batch.targets, cfg.label_smoothing)


@torch.inference_mode()
def complete(lm, tokenizer, prompt, max_new_tokens=32):
    """The LM's greedy continuation of `prompt` (text after bos), up to its eos: complete(lm, tok, "seven is")
    -> " odd." once it has learnt the facts."""
    ids = encode(tokenizer, [prompt], eos=False)[0].to(next(lm.parameters()).device)  # (1, T)
    new, past = [], None
    for _ in range(min(max_new_tokens, lm.config.n_positions - ids.size(1))):
        out = lm(input_ids=ids if past is None else ids[:, -1:], use_cache=True, **{CACHE_ARGUMENT: past})
        past, next_id = out[CACHE_ARGUMENT], out.logits[0, -1].argmax()  # the prompt once, then a token a step
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


class FactTest:
    """The facts the LM read (all but the held-out ones) and those it never read: how many it completes right."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def evaluate(self, lm):
        held_out = set(held_out_facts())
        trained = fact_accuracy(lm, self.tokenizer, [f for f in all_facts() if f not in held_out])
        return {"exact_match": trained, "facts_right": {"trained": trained,
                                                        "held_out": fact_accuracy(lm, self.tokenizer, held_out)}}


@dataclass
class TextOptions:
    hub: bool = False  # start from the hub's GPT-2 and its tokenizer (needs the internet; the model flags are unused)

    def check(self):
        pass  # nothing to refuse: a bool (whether the hub can be reached is build_text_lm's to say, at once)


def check_hub(timeout=5):
    """Refuse hub=True at once, in a sentence, when GPT-2 is not in the local cache and the Hugging Face hub cannot be
    reached: transformers would wait its timeouts, and the failure would then read as a folder not written."""
    import huggingface_hub

    if all(isinstance(huggingface_hub.try_to_load_from_cache(HUB_NAME, name), str)
           for name in ("config.json", "model.safetensors", "tokenizer.json")):
        return  # downloaded before: transformers loads it from the cache
    try:
        huggingface_hub.model_info(HUB_NAME, timeout=timeout)
    except Exception as err:  # offline mode, no network, a proxy's refusal: the hub's and httpx's own kinds
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--hub true loads GPT-2 from the Hugging Face hub, which could not be reached ({reason}): "
                         "connect to the internet, or leave out --hub to train the tiny GPT-2 offline") from None


def _new_model(config, options):
    sizes = {"n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head,
             "n_positions": config.n_positions}
    return build_text_lm(hub=options.hub, **({} if options.hub else sizes))


def _data(model, tokenizer, cfg, options, device):
    return FactBatches(tokenizer), FactTest(tokenizer)


TASK = Task("text", "a language model reads facts about numbers (text only): 'seven plus one is eight.'",
            TextLMConfig, _new_model, _data,
            TrainConfig(epochs=1, batch_size=32, lr=3e-3, weight_decay=0.01, warmup_steps=0, min_lr_ratio=0.1,
                        augment=False, augment_strokes=False),
            TextOptions, text_loss, architecture="GPT2LMHeadModel", model_options=("hub",))
