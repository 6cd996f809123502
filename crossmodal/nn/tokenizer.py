"""Character-level tokenizer, exposed as a transformers `PreTrainedTokenizerFast`.

One token per character, plus <pad> (0), <bos> (1), <eos> (2) and <unk> (3). Being a real
transformers tokenizer, it pads batches, decodes, and saves/loads with save_pretrained /
from_pretrained like any other. `build_chat_tokenizer` adds a chat template for questions and
answers, so prompts are built as the ecosystem builds them (`apply_chat_template`).
"""

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
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
    vocab = tokenizer.get_vocab()
    unknown = sorted({c for c in text if c not in vocab or c in SPECIAL_TOKENS})
    if unknown:
        known = "".join(sorted(c for c in vocab if len(c) == 1))  # characters, not <eos> or <|user|>
        raise ValueError(f"characters {unknown} are not in the vocabulary; known characters: {known!r}")
