"""The open vocabulary (nn/tokenizer.py's build_byte_tokenizer): any text encodes and decodes back exactly, digits
are one token each, the chat template holds an image whose <image> expands to one placeholder per patch, the
assistant mask marks the answers only, and it saves and loads."""

import pytest
from transformers import PreTrainedTokenizerFast

from crossmodal.nn.tokenizer import (
    BYTE_SPECIAL_TOKENS,
    IMAGE_CHAT_TEMPLATE,
    build_byte_tokenizer,
    build_char_tokenizer,
    check_text,
    decode_pieces,
    expand_image_tokens,
    image_token_id,
    is_byte_level,
)

CORPUS = ["What's the second digit of 2026?", "Read the number 4711 backwards.", "Is there a 7 in 1234?",
          "1234 has 7: no", "2+0=2, 2+2=4, 4+6=10", "the number after seven is eight."] * 20
ANYTHING = ["What's the 2nd digit?", "Ünïcödé, ¿qué? ñ", "数字は何ですか", "😀👍🏽 emoji", "tab\there\nnewline",
            "  leading and trailing  ", "G x ' \" ` ~ \\ {braces} [brackets] <angle>", "\u200bzero width", "é" * 30,
            "Ωμέγα Привет عربى עברית", "\x00\x7f control", "½ ² ⅓ ∑ √"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_byte_tokenizer(CORPUS, vocab_size=320)


@pytest.mark.parametrize("text", ANYTHING)
def test_any_text_round_trips_and_nothing_is_unknown(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert all(0 <= i < len(tokenizer) for i in ids)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    check_text(tokenizer, text)  # never "not in the vocabulary"


def test_special_tokens_come_first_and_there_is_no_unknown_token(tokenizer):
    assert tokenizer.convert_ids_to_tokens(list(range(6))) == BYTE_SPECIAL_TOKENS
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.unk_token is None and image_token_id(tokenizer) == 5
    assert is_byte_level(tokenizer) and not is_byte_level(build_char_tokenizer(["abc"]))
    assert len(tokenizer) == 320  # the corpus has merges enough to fill it


def test_digits_are_one_token_each_and_merges_are_learnt(tokenizer):
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("2026 and 4711", add_special_tokens=False)["input_ids"])
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("20264711")
    assert len(tokenizer("What's the second digit", add_special_tokens=False)["input_ids"]) < 10  # merged words


def test_the_build_is_deterministic_and_refuses_bad_sizes():
    assert build_byte_tokenizer(CORPUS, 300).get_vocab() == build_byte_tokenizer(CORPUS, 300).get_vocab()
    with pytest.raises(ValueError, match="at least 262"):
        build_byte_tokenizer(CORPUS, vocab_size=100)
    with pytest.raises(ValueError, match="empty texts"):
        build_byte_tokenizer(["", ""])


def test_special_token_names_in_a_question_are_refused_with_a_sentence(tokenizer):
    with pytest.raises(ValueError, match="reads as its control token"):
        check_text(tokenizer, "What is <image>?")
    with pytest.raises(ValueError, match="empty"):
        check_text(tokenizer, "")


def image_chat(question, answer=None):
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return chat + ([{"role": "assistant", "content": answer}] if answer is not None else [])


def test_the_chat_template_holds_an_image_and_marks_the_answer_only(tokenizer):
    out = tokenizer.apply_chat_template(image_chat("Is there a 7?", "2026 has 7: no"), tokenize=True,
                                        return_dict=True, return_assistant_tokens_mask=True)
    tokens = tokenizer.convert_ids_to_tokens(out["input_ids"])
    assert tokens[:3] == ["<bos>", "<|user|>", "<image>"] and tokens.count("<image>") == 1
    marked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tokenizer.decode(marked) == "2026 has 7: no<eos>"
    prompt = tokenizer.apply_chat_template(image_chat("Is there a 7?"), tokenize=True, add_generation_prompt=True,
                                           return_dict=True)["input_ids"]
    assert prompt == out["input_ids"][: len(prompt)] and tokenizer.convert_ids_to_tokens(prompt[-1]) == "<|assistant|>"
    text_only = tokenizer.apply_chat_template([{"role": "user", "content": "Is there a 7 in 2026?"}], tokenize=False)
    assert text_only == "<bos><|user|>Is there a 7 in 2026?"


def test_a_two_turn_chat_marks_both_answers_and_nothing_else(tokenizer):
    chat = image_chat("Read the number.", "2026") + [{"role": "user", "content": "And backwards?"},
                                                    {"role": "assistant", "content": "6202"}]
    out = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    runs, run = [], []
    for i, m in zip(ids, mask):
        if m:
            run.append(i)
        elif run:
            runs, run = runs + [run], []
    runs += [run] if run else []
    assert [tokenizer.decode(r) for r in runs] == ["2026<eos>", "6202<eos>"]


def test_expanding_the_image_token(tokenizer):
    out = tokenizer.apply_chat_template(image_chat("Sum the digits.", "10"), tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids, mask = expand_image_tokens(out["input_ids"], 5, 16, out["assistant_masks"])
    assert len(ids) == len(out["input_ids"]) + 15 and ids[2:18] == [5] * 16 and ids[18] != 5
    assert len(mask) == len(ids) and mask[2:18] == [0] * 16
    assert [i for i, m in zip(ids, mask) if m] == [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert expand_image_tokens([1, 5, 7, 5], 5, 2) == [1, 5, 5, 7, 5, 5]  # each <image>, one per image
    with pytest.raises(ValueError, match="count must be"):
        expand_image_tokens([1, 5], 5, 0)
    with pytest.raises(ValueError, match="as long as ids"):
        expand_image_tokens([1, 5], 5, 3, [0])


def test_pieces_say_what_each_token_reads_as(tokenizer):
    ids = tokenizer("é 2026!", add_special_tokens=False)["input_ids"]
    text, pieces = decode_pieces(tokenizer, ids + [tokenizer.bos_token_id])
    assert text == "é 2026!�" and len(pieces) == len(ids) + 1 and pieces[-1] == "�"
    char = build_char_tokenizer(["abc"])
    assert decode_pieces(char, char("cab", add_special_tokens=False)["input_ids"]) == ("cab", ["c", "a", "b"])


def test_save_and_load(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab() and loaded.chat_template == IMAGE_CHAT_TEMPLATE
    assert is_byte_level(loaded) and image_token_id(loaded) == 5
    for text in ANYTHING:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    chat = image_chat("Is there a 7?", "no")
    assert loaded.apply_chat_template(chat, tokenize=False) == tokenizer.apply_chat_template(chat, tokenize=False)
