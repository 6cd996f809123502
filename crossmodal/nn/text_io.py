"""Text in and out of a VisionLanguageModel: the prompt it reads, the text it wrote, the tokenizer it needs.

    prompt_ids      a user's question as the chat template builds it (a splice model's image first, its <image>
                    expanded to one placeholder per patch embedding, as LLaVA's processor does)
    with_image      rows of token ids given the image's placeholders where they lack them (after <bos>)
    decode_rows     written token ids back to text, and what each token reads as
    check_tokenizer a tokenizer checked against a model's config: sizes, special tokens, chat template
"""

from .decoding import until_eos
from .tokenizer import (
    CHAT_TEMPLATE,
    IMAGE_CHAT_TEMPLATE,
    IMAGE_TOKEN,
    check_text,
    decode_pieces,
    expand_image_tokens,
    image_token_id,
    is_byte_level,
)


def prompt_ids(tokenizer, text, block_size, image_tokens=0, image_id=-1):
    """The token ids a model reads after <bos> before it writes, for a prompt `text` (a str).

    With a chat template (an answerer), `text` is the user's turn: <|user|>text<|assistant|>; with image_tokens > 0
    (a splice model) the turn holds the image before the text, <|user|><image>text<|assistant|>, and its <image> is
    expanded into image_tokens placeholders (id image_id). Without a chat template, the text is read as it is (after
    the placeholders, if any). Raises ValueError for an empty prompt, characters outside a character tokenizer's
    vocabulary, or a prompt so long that no answer would fit in block_size.
    """
    check_text(tokenizer, text)
    if not text.strip():
        raise ValueError("the prompt holds only spaces: write a question or some text")
    if getattr(tokenizer, "chat_template", None):
        content = [{"type": "image"}, {"type": "text", "text": text}] if image_tokens else text
        ids = tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=True,
                                            add_generation_prompt=True, return_dict=True)["input_ids"][1:]  # no <bos>
        ids = expand_image_tokens(ids, image_id, image_tokens) if image_tokens else ids
    else:
        ids = [image_id] * image_tokens + tokenizer(text, add_special_tokens=False)["input_ids"]
    room = block_size - 1 - len(ids) - 1  # <bos>, the prompt, an answer's <eos>
    if room < 1 and is_byte_level(tokenizer):
        raise ValueError(f"the prompt takes {len(ids)} tokens (the image's {image_tokens} included); this model "
                         f"reads at most {len(ids) + room - 1} (its block_size is {block_size} tokens)")
    if room < 1:
        raise ValueError(f"the prompt is {len(text)} characters long; this model reads at most "
                         f"{len(text) + room - 1} (its block_size is {block_size} tokens)")
    return ids


def with_image(rows, image_id, count):
    """Rows of token ids (each starting with <bos>) that each hold the image's `count` placeholders: a row without
    any gets them right after <bos> (a caption's place for the image); a row with some other number is refused."""
    out = []
    for row in rows:
        found = row.count(image_id)
        if found not in (0, count):
            raise ValueError(f"a prompt holds {found} {IMAGE_TOKEN} tokens; it holds the image's {count} or none "
                             "(then they are put first)")
        out.append(row if found else row[:1] + [image_id] * count + row[1:])
    return out


def decode_rows(tokenizer, generated, eos_id, pad_id):
    """Written token ids (B, T), a tensor or lists -> [(text, pieces)], each row up to its <eos> (tokenizer.
    decode_pieces: pieces, what each token reads as, one per token; a special token shows as "�")."""
    ids = generated.tolist() if hasattr(generated, "tolist") else [list(r) for r in generated]
    vocab = len(tokenizer)
    bad = sorted({i for row in ids for i in row if not 0 <= i < vocab})
    if bad:
        raise ValueError(f"token ids {bad} are not in the vocabulary of {vocab} tokens (0 to {vocab - 1})")
    return [decode_pieces(tokenizer, until_eos(row, eos_id, pad_id)) for row in ids]


def check_tokenizer(config, tokenizer):
    """Refuse a tokenizer that does not fit a VLMConfig: its size, its special tokens' ids (<image>'s included), and
    a chat template other than the ones crossmodal writes (a template is a program)."""
    ids = {"bos_id": tokenizer.bos_token_id, "eos_id": tokenizer.eos_token_id, "pad_id": tokenizer.pad_token_id,
           "image_id": -1 if image_token_id(tokenizer) is None else image_token_id(tokenizer)}
    wrong = [f"{name} is {getattr(config, name)} in the config but {i} in the tokenizer"
             for name, i in ids.items() if i != getattr(config, name)]
    if len(tokenizer) != config.decoder.vocab_size:
        wrong.insert(0, f"the tokenizer has {len(tokenizer)} tokens, the config {config.decoder.vocab_size}")
    if getattr(tokenizer, "chat_template", None) not in (None, CHAT_TEMPLATE, IMAGE_CHAT_TEMPLATE):
        wrong.append("its chat template is not the one crossmodal writes (nn/tokenizer.py's CHAT_TEMPLATE)")
    if wrong:
        raise ValueError(f"the tokenizer does not fit the model ({'; '.join(wrong)}): the files come from "
                         "different checkpoints or were edited")
