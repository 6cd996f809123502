import pytest
from transformers import PreTrainedTokenizerFast

from crossmodal import build_char_tokenizer, caption_for
from crossmodal.data import ALL_CAPTIONS
from crossmodal.nn.tokenizer import check_text


@pytest.fixture
def tokenizer():
    return build_char_tokenizer(ALL_CAPTIONS)


def test_one_token_per_character_with_bos_eos(tokenizer):
    ids = tokenizer(caption_for(7))["input_ids"]
    assert len(ids) == len("This is the number seven.") + 2
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "This is the number seven."


def test_round_trip_every_caption(tokenizer):
    for text in ALL_CAPTIONS:
        assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_batch_padding_on_the_right(tokenizer):
    batch = tokenizer([caption_for(1), caption_for(7)], padding=True)
    one, seven = batch["input_ids"]
    assert len(one) == len(seven)
    assert one[-2:] == [tokenizer.pad_token_id] * 2
    assert batch["attention_mask"][0][-2:] == [0, 0]


def test_save_and_load(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded(caption_for(3))["input_ids"] == tokenizer(caption_for(3))["input_ids"]


def test_unknown_characters_and_empty_text_are_refused(tokenizer):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        check_text(tokenizer, "This is the number 7!")
    with pytest.raises(ValueError, match="empty"):
        check_text(tokenizer, "")
    with pytest.raises(ValueError, match="empty"):
        build_char_tokenizer([""])


def test_chat_template_builds_prompts_and_marks_the_answer(tmp_path):
    from transformers import PreTrainedTokenizerFast

    from crossmodal.data.questions import vocabulary
    from crossmodal.nn.tokenizer import build_chat_tokenizer

    tokenizer = build_chat_tokenizer(vocabulary())
    chat = [{"role": "user", "content": "What is the sum of the digits?"}, {"role": "assistant", "content": "10"}]
    out = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    tokens = tokenizer.convert_ids_to_tokens(out["input_ids"])
    assert tokens == ["<bos>", "<|user|>", *"What is the sum of the digits?", "<|assistant|>", "1", "0", "<eos>"]
    assert out["assistant_masks"] == [0] * (len(tokens) - 3) + [1, 1, 1]  # the answer and its <eos>: what is learnt
    prompt = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<bos><|user|>What is the sum of the digits?<|assistant|>"
    tokenizer.save_pretrained(tmp_path)
    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert again.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"] == out["input_ids"]
    with pytest.raises(Exception, match="roles are user and assistant"):
        tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."}], tokenize=False)
