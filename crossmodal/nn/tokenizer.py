"""Tokenizers, exposed as transformers `PreTrainedTokenizerFast`s: a character one, and an open byte-level one.

Character-level: one token per character, plus <pad> (0), <bos> (1), <eos> (2) and <unk> (3). Being a real
transformers tokenizer, it pads batches, decodes, and saves/loads with save_pretrained /
from_pretrained like any other. `build_chat_tokenizer` adds a chat template for questions and
answers, so prompts are built as the ecosystem builds them (`apply_chat_template`).

Its vocabulary is the characters of its training texts, so a question holding any other ("G", the apostrophe of
"What's") cannot be read. `build_byte_tokenizer` has none unknown: GPT-2's byte-level BPE, whose 256 first
tokens are the bytes, so any text is some sequence of them, with merges learnt from a corpus; and a chat
template whose user turn may hold an image, LLaVA's `<image>`, which `expand_image_tokens` turns into one
placeholder per patch embedding (splice.py).
"""

from itertools import groupby

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def build_char_tokenizer(texts):
    """A tokenizer whose vocabulary is every character that occurs in `texts`."""
    chars = sorted(set("".join(texts)))
    if not chars:
        raise ValueError("cannot build a tokenizer from empty texts: give at least one character")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character alone
    tok.decoder = decoders.Fuse()  # join characters back without spaces
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 1), ("<eos>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        padding_side="right",
    )


ROLES = ["<|user|>", "<|assistant|>"]  # one token each, marking who speaks
# <bos><|user|>question<|assistant|>answer<eos>: the {% generation %} block marks the assistant's tokens, so
# apply_chat_template(..., return_assistant_tokens_mask=True) says which tokens the loss should count.
CHAT_TEMPLATE = (
    "<bos>{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}<|user|>{{ message['content'] }}"
    "{%- elif message['role'] == 'assistant' -%}<|assistant|>{% generation %}{{ message['content'] }}<eos>"
    "{% endgeneration %}"
    "{%- else -%}{{ raise_exception('roles are user and assistant, got ' + message['role']) }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


def build_chat_tokenizer(texts):
    """A character tokenizer for `texts` with a user and an assistant token and a chat template (CHAT_TEMPLATE).

    tokenizer.apply_chat_template([{"role": "user", "content": "Read the number."},
                                   {"role": "assistant", "content": "2026"}])
    gives <bos><|user|>Read the number.<|assistant|>2026<eos>, one token per character; with
    add_generation_prompt=True and the user turn alone, the prompt a model answers after.
    """
    tokenizer = build_char_tokenizer(texts)
    tokenizer.add_special_tokens({"additional_special_tokens": ROLES})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


IMAGE_TOKEN = "<image>"  # where a user's turn holds the image; expanded to one per patch embedding
BYTE_SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", *ROLES, IMAGE_TOKEN]  # ids 0 … 5; no <unk>: nothing is unknown
# As CHAT_TEMPLATE, and a user's content may be a list of parts, transformers' multimodal convention:
# [{"type": "image"}, {"type": "text", "text": "What's the second digit?"}] -> <|user|><image>What's the second digit?
IMAGE_CHAT_TEMPLATE = (
    "<bos>{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}<|user|>"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}<image>{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- else -%}{{ raise_exception('a part of a message is an image or a text, got ' + part['type']) }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}<|assistant|>{% generation %}{{ message['content'] }}<eos>"
    "{% endgeneration %}"
    "{%- else -%}{{ raise_exception('roles are user and assistant, got ' + message['role']) }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


def build_byte_tokenizer(texts, vocab_size=512):
    """A byte-level BPE tokenizer trained on `texts`: every text, in any script, encodes and decodes back exactly.

    Its first tokens are BYTE_SPECIAL_TOKENS (<pad> 0, <bos> 1, <eos> 2, <|user|>, <|assistant|>, <image>), then
    the 256 bytes (GPT-2's ByteLevel alphabet), then merges learnt from `texts` up to `vocab_size` tokens. Digits
    are always split one per token (as in LLaMA): "2026" is 2, 0, 2, 6, whatever the corpus, so a number is read
    and written digit by digit. tokenizer(text) adds <bos> and <eos>, as the character tokenizer does; its chat
    template is IMAGE_CHAT_TEMPLATE, with the assistant's tokens marked for return_assistant_tokens_mask.
    """
    smallest = len(BYTE_SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < smallest:
        raise ValueError(f"vocab_size must be a whole number of at least {smallest} (the special tokens and the 256 "
                         f"bytes), got {vocab_size!r}")
    texts = list(texts)
    if not any(texts):
        raise ValueError("cannot learn merges from empty texts: give at least one character")
    tok = Tokenizer(models.BPE())  # no unk_token: every byte is a token
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=BYTE_SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # all 256 bytes, seen in texts or not
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 1), ("<eos>", 2)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", padding_side="right",
        additional_special_tokens=[*ROLES, IMAGE_TOKEN], clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = IMAGE_CHAT_TEMPLATE
    return tokenizer


def is_byte_level(tokenizer):
    """True for a tokenizer that reads any text (build_byte_tokenizer's), whose tokens are pieces of bytes."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and isinstance(backend.decoder, decoders.ByteLevel)


def image_token_id(tokenizer):
    """The id of the tokenizer's <image> token, or None if it has none."""
    return tokenizer.get_vocab().get(IMAGE_TOKEN)


def expand_image_tokens(ids, image_id, count, assistant_masks=None):
    """What LLaVA's processor does: each <image> id in `ids` (a list) replaced by `count` of them, one per patch
    embedding the decoder will write there (splice.py). Returns the new list; with `assistant_masks` (a list as
    long as ids, apply_chat_template's), also that list with a 0 for each placeholder: (ids, masks)."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a whole number ≥ 1 (the image's patch embeddings), got {count!r}")
    if assistant_masks is not None and len(assistant_masks) != len(ids):
        raise ValueError(f"assistant_masks must be as long as ids ({len(ids)}), got {len(assistant_masks)}")
    out, masks = [], []
    for i, token in enumerate(ids):
        many = count if token == image_id else 1
        out += [token] * many
        masks += [0 if token == image_id else assistant_masks[i]] * many if assistant_masks is not None else []
    return out if assistant_masks is None else (out, masks)


def decode_pieces(tokenizer, ids):
    """(text, pieces) of token ids: pieces, what each token reads as, one per token, a special token (which only an
    untrained model writes) as "�"; text, their join. A byte-level tokenizer decodes its runs of tokens together,
    so a character whose bytes span two tokens is whole in text (and "�" in each piece)."""
    specials = set(tokenizer.all_special_ids)
    if not is_byte_level(tokenizer):  # one character per token
        pieces = ["�" if i in specials else tokenizer.convert_ids_to_tokens(i) for i in ids]
        return "".join(pieces), pieces
    pieces = ["�" if i in specials else tokenizer.decode([i]) for i in ids]
    runs = [("�" * len(list(run)) if special else tokenizer.decode(list(run)))
            for special, run in groupby(ids, key=lambda i: i in specials)]
    return "".join(runs), pieces


def check_text(tokenizer, text):
    """Raise a clear error for text the tokenizer cannot represent (instead of silent <unk>s), and for
    text holding a special token's name such as "<eos>", which would be read as that token."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is empty: give at least one character")
    controls = [t for t in tokenizer.all_special_tokens if t in text]
    if controls:  # the tokenizer would read them as control tokens, not as their characters
        raise ValueError(f"text contains {controls[0]!r}, which the tokenizer reads as its control token, "
                         "not as characters: remove it")
    if is_byte_level(tokenizer):
        return  # any text is bytes: nothing is unknown
    vocab = tokenizer.get_vocab()
    unknown = sorted({c for c in text if c not in vocab or c in SPECIAL_TOKENS})
    if unknown:
        known = "".join(sorted(c for c in vocab if len(c) == 1))  # characters, not <eos> or <|user|>
        raise ValueError(f"characters {unknown} are not in the vocabulary; known characters: {known!r}")
