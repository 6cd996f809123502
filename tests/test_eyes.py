"""Training a Flamingo on captions (crossmodal/eyes.py), saving and loading it, and the transfer measurements
(crossmodal/transfer.py): scoring checked with scripted models whose answers are known; the shipped model
checked against its own record."""

import json
from types import SimpleNamespace

import pytest
import torch

from crossmodal import VisionConfig, VisionTransformer
from crossmodal.data import caption_for
from crossmodal.eyes import build_eyes, caption_batch, load_eyes, save_eyes, train_on_captions
from crossmodal.facts import continuations
from crossmodal.text_lm import build_text_lm, encode, pretrain
from crossmodal.transfer import KINDS, chance, level_one, level_two, measure_transfer, right_answer


def tiny_parts():
    lm, tokenizer = build_text_lm(n_embd=32, n_layer=2, n_head=2)
    torch.manual_seed(1)
    return lm, tokenizer, VisionTransformer(VisionConfig(dim=24, depth=1, num_heads=2, patch_size=7))


def test_captions_are_written_without_eos_so_the_sentence_can_go_on():
    _, tokenizer, _ = tiny_parts()
    ids, labels = caption_batch(tokenizer, torch.tensor([7, 1]))
    assert tokenizer.decode(ids[0, 1:]) == caption_for(7) and ids[0, 0] == tokenizer.bos_token_id
    assert tokenizer.eos_token_id not in ids[0].tolist() and (labels[1, -2:] == -100).all()  # "one" is 2 shorter


def test_training_on_captions_opens_the_gates_and_leaves_the_lm_and_encoder_alone():
    lm, tokenizer, encoder = tiny_parts()
    frozen = {k: v.clone() for k, v in lm.state_dict().items()}
    eyes_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = build_eyes(lm, encoder, cross_attention_every=1)
    images, digits = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    history = train_on_captions(model, tokenizer, images, digits, steps=12, batch_size=16, lr=3e-3)
    assert len(history["loss"]) == 12 and len(history["gates"]) == 12
    assert torch.tensor(history["gates"]).shape == (12, 2, 2)  # step, layer, (attention, feed-forward)
    assert (torch.tensor(history["gates"][-1]).abs() > 0).all() and history["loss"][-1] < history["loss"][0]
    inside = {k.replace(".block.", "."): v for k, v in model.lm.state_dict().items() if ".xattn." not in k}
    assert inside.keys() == frozen.keys() and all(torch.equal(inside[k], frozen[k]) for k in frozen)
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in eyes_before.items())  # Flamingo's frozen eyes
    assert not model.training and not model.lm.training


def test_the_control_learns_its_lm_from_zero_with_no_gates():
    lm, tokenizer, encoder = tiny_parts()
    pretrain(lm, tokenizer, steps=2, batch_size=4)  # it read some facts
    control = build_eyes(lm, encoder, from_scratch=True)
    assert control.gates() is None and all(p.requires_grad for p in control.lm.parameters())
    assert not torch.equal(control.lm.transformer.wte.weight, lm.transformer.wte.weight)  # it never read a fact
    assert not any(p.requires_grad for p in control.encoder.parameters())  # the same frozen eyes


def test_save_and_load_give_the_same_model_and_refuse_broken_folders(tmp_path):
    lm, tokenizer, encoder = tiny_parts()
    model = build_eyes(lm, encoder)
    with torch.no_grad():
        for layer in model.flamingo_layers:
            layer.xattn.attn_gate.fill_(0.5)  # open, so the image matters
    save_eyes(model, tokenizer, tmp_path / "eyes", {"command": "test"})
    loaded, loaded_tokenizer = load_eyes(tmp_path / "eyes")
    images, ids = torch.rand(3, 1, 28, 28), encode(tokenizer, ["seven is odd."] * 3)[0]
    assert torch.equal(loaded(images, ids), model.eval()(images, ids))
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab() and loaded.gates() is not None
    assert json.loads((tmp_path / "eyes" / "training.json").read_text()) == {"command": "test"}

    weights = tmp_path / "eyes" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_eyes(tmp_path / "eyes")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_eyes(tmp_path)
    with pytest.raises(ValueError, match="VisionTransformer"):
        save_eyes(SimpleNamespace(encoder=torch.nn.Identity()), tokenizer, tmp_path / "other")


class Scripted:
    """A stand-in for a Flamingo whose continuation is scripted from the image's digit (stored in a pixel)."""

    def __init__(self, tokenizer, answer):
        self.tokenizer, self.answer = tokenizer, answer

    def generate(self, images, prompt_ids, max_new_tokens, eos_id):
        prompt = self.tokenizer.decode(prompt_ids[0, 1:])
        rows = [self.tokenizer(self.answer(prompt, round(image[0, 0, 0].item() * 10)), add_special_tokens=False)
                ["input_ids"][:max_new_tokens] + [eos_id] for image in images]
        width = max(map(len, rows))
        return torch.tensor([row + [eos_id] * (width - len(row)) for row in rows])


def digit_images(digits):
    images = torch.zeros(len(digits), 1, 28, 28)
    images[:, 0, 0, 0] = digits.float() / 10
    return images


def knows_everything(prompt, digit):
    if prompt == "":
        return f"{caption_for(digit)} {continuations(digit)['after']}"
    kind = next(k for k, question in KINDS.items() if prompt.endswith(question.strip()))
    return f" {right_answer(kind, digit) or 'nothing'}."


def test_a_model_that_knows_scores_everything_and_one_that_guesses_scores_chance():
    _, tokenizer, _ = tiny_parts()
    digits = torch.tensor([7, 1, 1, 0, 3, 8, 2, 9, 1, 4])
    images = digit_images(digits)
    results = measure_transfer(Scripted(tokenizer, knows_everything), tokenizer, images, digits)
    assert results["read"]["images"] == 8 and results["held_out"]["images"] == 2  # the 3 and the 8
    for group in results.values():
        assert group["level_one"] == {"caption": 1.0, "goes_on": 1.0, "after": 1.0, "before": 1.0, "parity": 1.0}
        assert group["level_two"] == {"after": 1.0, "before": 1.0, "parity": 1.0}
    assert chance("after", digits) == 0.3 and chance("before", digits) == 3 / 9  # "two" ×3; "zero" ×3 of 9
    assert chance("parity", digits) == 0.6 and results["held_out"]["chance"]["parity"] == 0.5  # 6 odd; 3 and 8

    def always_two(prompt, digit):  # the commonest answer to "after", whatever the image
        return f"{caption_for(1)} The number after it is two." if prompt == "" else " two."

    guess = Scripted(tokenizer, always_two)
    assert level_two(guess, tokenizer, images, digits)["after"] == chance("after", digits)
    one = level_one(guess, tokenizer, images, digits)
    assert one["caption"] == 0.3 and one["goes_on"] == 0.3 and one["after"] == 0.3

    def wrong_fact(prompt, digit):  # right caption, then a false sentence about it
        return f"{caption_for(digit)} The number after it is {'zero' if digit else 'two'}." if prompt == "" else ""

    assert level_one(Scripted(tokenizer, wrong_fact), tokenizer, images, digits)["goes_on"] == 0.0


def test_a_garbled_caption_is_wrong_and_never_asked_about():
    _, tokenizer, _ = tiny_parts()
    asked = []

    def garbled(prompt, digit):
        asked.append(prompt)
        return "This is the numbr sevn" if prompt == "" else " eight."

    digits = torch.tensor([7, 7])
    one = level_one(Scripted(tokenizer, garbled), tokenizer, digit_images(digits), digits)
    assert one == {"caption": 0.0, "goes_on": 0.0, "after": 0.0, "before": 0.0, "parity": 0.0} and set(asked) == {""}
    with pytest.raises(ValueError, match="kind must be one of"):
        right_answer("plus", 3)


# ---- the shipped model (crossmodal/checkpoints/gpt2-eyes) ---------------------------------------------------


def test_the_shipped_files_are_small_and_recorded():
    from crossmodal.pretrained import EYES_DIR, TEXT_LM_DIR, eyes_record

    for folder in (EYES_DIR, TEXT_LM_DIR):
        assert sum(f.stat().st_size for f in folder.iterdir()) <= 5 * 1024 * 1024, folder.name
    record = eyes_record()
    assert record["command"].startswith("python -m crossmodal.eyes")
    assert record["control"]["command"].startswith("python -m crossmodal.eyes --from-scratch")
    assert "--captions-only" in record["captions_only"]["command"]
    assert len(record["gates"]) == len(record["loss"]) and min(map(abs, sum(record["gates"][-1], []))) > 0.01


def test_the_shipped_model_keeps_the_text_lm_bit_for_bit():
    from crossmodal.pretrained import load_gpt2_eyes, load_text_lm

    (eyes, tokenizer), (lm, lm_tokenizer) = load_gpt2_eyes(), load_text_lm()
    inside = {k.replace(".block.", "."): v for k, v in eyes.lm.state_dict().items() if ".xattn." not in k}
    assert inside.keys() == lm.state_dict().keys()
    assert all(torch.equal(inside[k], v) for k, v in lm.state_dict().items())
    assert tokenizer.get_vocab() == lm_tokenizer.get_vocab()


def test_the_shipped_model_transfers_as_its_record_says(mnist_test):
    from crossmodal.pretrained import eyes_record, load_gpt2_eyes

    record, (eyes, tokenizer) = eyes_record(), load_gpt2_eyes()
    shipped, control = record["transfer"]["read"], record["control"]["transfer"]["read"]
    assert all(shipped["level_one"][k] >= 0.9 for k in KINDS)  # the bar for level 1
    assert all(control["level_one"][k] <= control["chance"][k] + 0.02 for k in KINDS)  # it never read a fact
    images, digits = mnist_test[0][::100], mnist_test[1][::100]  # 100 test digits
    measured = measure_transfer(eyes, tokenizer, images, digits)["read"]
    for k in ("caption", *KINDS):
        assert abs(measured["level_one"][k] - shipped["level_one"][k]) <= 0.1, (k, measured["level_one"])


def test_the_cli_gives_eyes_to_any_saved_lm_even_one_with_gpt2s_bpe_tokenizer(tmp_path, mnist_test, monkeypatch):
    """The path a learner with the internet takes (text_lm --hub, then eyes --lm), offline: a tiny random GPT-2
    with a byte-level BPE tokenizer like GPT-2's, saved as text_lm saves it, then two steps of eyes' CLI."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from crossmodal import eyes
    from tests.test_flamingo import gpt2_like_tokenizer

    tokenizer = gpt2_like_tokenizer()
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=eot, eos_token_id=eot))
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    eyes.main(["--lm", str(tmp_path / "lm"), "--steps", "2", "--batch-size", "4", "--test-every", "1000",
               "--out", str(tmp_path / "eyes")])
    model, loaded_tokenizer = load_eyes(tmp_path / "eyes")
    record = json.loads((tmp_path / "eyes" / "training.json").read_text())
    assert record["command"].startswith("python -m crossmodal.eyes --lm") and len(record["gates"]) == 2
    assert record["transfer"]["read"]["images"] + record["transfer"]["held_out"]["images"] == 10
    assert model.cross_attention_every == 2 and loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
