"""Training a Flamingo on captions (crossmodal/tasks/eyes.py), saving and loading it, and the transfer measurements
(crossmodal/tasks/transfer.py): scoring checked with scripted models whose answers are known; the shipped model
checked against its own record; and the command line of the text and eyes tasks (`python -m crossmodal.train
--task text|eyes`), end to end."""

import json
from dataclasses import replace

import pytest
import torch

from crossmodal import TimmEncoder, VisionConfig, VisionTransformer
from crossmodal import train as train_cli
from crossmodal.data import caption_for
from crossmodal.data.facts import continuations
from crossmodal.nn.auto import load_model, save_model
from crossmodal.nn.flamingo import Flamingo
from crossmodal.tasks import TASKS
from crossmodal.tasks import eyes as eyes_task
from crossmodal.tasks.eyes import CaptionSentences, build_eyes, caption_batch, eyes_loss
from crossmodal.tasks.text import FactBatches, build_text_lm, encode, text_loss
from crossmodal.tasks.transfer import KINDS, chance, level_one, level_two, measure_transfer, right_answer
from crossmodal.training import train
from crossmodal.training.records import write_record


def pretrain(lm, tokenizer, steps, batch_size, lr=3e-3):
    """The text task's training (its TrainConfig, FactBatches, text_loss) for `steps` steps; the loss of each."""
    cfg = replace(TASKS["text"].train_config, steps=steps, batch_size=batch_size, lr=lr)
    return train(lm, cfg, FactBatches(tokenizer), loss=text_loss, tokenizer=tokenizer)["loss"]


def train_on_captions(model, tokenizer, images, digits, steps, batch_size, lr):
    """The eyes task's training (CaptionSentences, eyes_loss, its gate-logging callback) for `steps` steps."""
    cfg = replace(TASKS["eyes"].train_config, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=1)
    return train(model, cfg, CaptionSentences(images, digits, tokenizer), loss=eyes_loss, tokenizer=tokenizer,
                 callbacks=TASKS["eyes"].callbacks(model))


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
    # the loss on captions alone, on one fixed batch: each step's loss also counts the sentences after the captions
    # (where the model must match the LM, a term that starts at 0), in a share that varies from batch to batch
    captions = next(CaptionSentences(images, digits, tokenizer, keep_text=False).batches(0, 64, seed=1))

    def caption_loss():
        with torch.no_grad():
            total, count = eyes_loss(model.eval(), captions, TASKS["eyes"].train_config)
        return (total / count).item()

    before = caption_loss()
    history = train_on_captions(model, tokenizer, images, digits, steps=12, batch_size=16, lr=3e-3)
    gates = [entry["gates"] for entry in history["logged"]]
    assert len(history["loss"]) == 12 and [entry["step"] for entry in history["logged"]] == list(range(1, 13))
    assert torch.tensor(gates).shape == (12, 2, 2)  # step, layer, (attention, feed-forward)
    assert (torch.tensor(gates[-1]).abs() > 0).all() and caption_loss() < before - 0.02
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
    save_model(model, tmp_path / "eyes", tokenizer)
    write_record(tmp_path / "eyes", {"command": "test"})  # a run's record beside its checkpoint
    loaded, loaded_tokenizer = load_model(tmp_path / "eyes")
    assert isinstance(loaded, Flamingo)
    images, ids = torch.rand(3, 1, 28, 28), encode(tokenizer, ["seven is odd."] * 3)[0]
    assert torch.equal(loaded(images, ids), model.eval()(images, ids))
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab() and loaded.gates() is not None
    assert json.loads((tmp_path / "eyes" / "training.json").read_text()) == {"command": "test"}

    weights = tmp_path / "eyes" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_model(tmp_path / "eyes")
    with pytest.raises(ValueError, match="lacks model.safetensors, config.json"):
        load_model(tmp_path)
    torch.manual_seed(0)
    timm_eyes = build_eyes(lm, TimmEncoder("vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=3, depth=1))
    with pytest.raises(ValueError, match="VisionTransformer"):
        save_model(timm_eyes, tmp_path / "other", tokenizer)
    assert not (tmp_path / "other").exists()  # nothing half-written


class Scripted:
    """A stand-in for a Flamingo whose continuation is scripted from the image's digit (stored in a pixel)."""

    image_size, in_chans = (28, 28), 1  # the pictures it takes, as a Flamingo says

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
    from crossmodal.pretrained import record as shipped_record
    from crossmodal.pretrained import shipped_dir

    for folder in (shipped_dir("gpt2-eyes"), shipped_dir("text-lm")):
        assert sum(f.stat().st_size for f in folder.iterdir()) <= 5 * 1024 * 1024, folder.name
    record = shipped_record("gpt2-eyes")
    assert record["command"].startswith("python -m crossmodal.train --task eyes")
    assert record["control"]["command"].startswith("python -m crossmodal.train --task eyes --from-scratch")
    assert "--captions-only" in record["captions_only"]["command"]
    assert "--cross-attention-every 1" in record["every_block"]["command"]
    gates = [logged["gates"] for logged in record["logged"]]  # tanh of every gate after every step
    assert len(gates) == record["steps"] == len(record["loss"]["mean"]) * record["loss"]["every"]
    assert min(map(abs, sum(gates[-1], []))) > 0.01  # every gate opened
    text = shipped_record("text-lm")
    assert text["command"].startswith("python -m crossmodal.train --task text")
    assert text["facts_right"]["trained"] > 0.95


def test_the_shipped_model_keeps_the_text_lm_bit_for_bit():
    from crossmodal.pretrained import load_gpt2_eyes, load_text_lm

    (eyes, tokenizer), (lm, lm_tokenizer) = load_gpt2_eyes(), load_text_lm()
    inside = {k.replace(".block.", "."): v for k, v in eyes.lm.state_dict().items() if ".xattn." not in k}
    assert inside.keys() == lm.state_dict().keys()
    assert all(torch.equal(inside[k], v) for k, v in lm.state_dict().items())
    assert tokenizer.get_vocab() == lm_tokenizer.get_vocab()


def test_the_shipped_model_transfers_as_its_record_says(mnist_test):
    from crossmodal.pretrained import load_gpt2_eyes
    from crossmodal.pretrained import record as shipped_record

    record, (eyes, tokenizer) = shipped_record("gpt2-eyes"), load_gpt2_eyes()
    shipped, control = record["transfer"]["read"], record["control"]["transfer"]["read"]
    assert all(shipped["level_one"][k] >= 0.9 for k in KINDS)  # the bar for level 1
    assert all(control["level_one"][k] <= control["chance"][k] + 0.02 for k in KINDS)  # it never read a fact
    images, digits = mnist_test[0][::100], mnist_test[1][::100]  # 100 test digits
    measured = measure_transfer(eyes, tokenizer, images, digits)["read"]
    for k in ("caption", *KINDS):
        assert abs(measured["level_one"][k] - shipped["level_one"][k]) <= 0.1, (k, measured["level_one"])


# ---- the command line: python -m crossmodal.train --task text|eyes -------------------------------------------


@pytest.fixture
def small_mnist(monkeypatch, mnist_train, mnist_test):
    """The eyes task's MNIST, in memory: 512 training digits, and the 10,000 test digits (--test-every thins them)."""
    monkeypatch.setattr(eyes_task, "load_mnist", lambda train: (mnist_train[0][:512], mnist_train[1][:512]) if train
                        else mnist_test)


def test_the_cli_gives_eyes_to_any_saved_lm_even_one_with_gpt2s_bpe_tokenizer(tmp_path, small_mnist):
    """The path a learner with the internet takes (--task text --hub, then --task eyes --lm), offline: a tiny random
    GPT-2 with a byte-level BPE tokenizer like GPT-2's, saved as transformers saves it, then two steps of eyes."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from crossmodal.nn.serialization import stamp
    from tests.test_flamingo import gpt2_like_tokenizer

    tokenizer = gpt2_like_tokenizer()
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=eot, eos_token_id=eot))
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="records no fingerprint"):  # transformers' own folder promises nothing
        load_model(tmp_path / "lm")
    stamp(tmp_path / "lm")  # its maker vouches for it, as the sentence above says to (issue #39)
    argv = ["--task", "eyes", "--lm", str(tmp_path / "lm"), "--steps", "2", "--batch-size", "4", "--test-every", "1000",
            "--out", str(tmp_path / "eyes")]
    train_cli.main(argv)
    model, loaded_tokenizer = load_model(tmp_path / "eyes")
    record = json.loads((tmp_path / "eyes" / "training.json").read_text())
    assert record["command"] == "python -m crossmodal.train " + " ".join(argv) and len(record["logged"]) == 2
    assert record["transfer"]["read"]["images"] + record["transfer"]["held_out"]["images"] == 10
    assert isinstance(model, Flamingo) and model.cross_attention_every == 2
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()


TINY_LM = ["--n-embd", "32", "--n-layer", "2", "--n-head", "2"]


def test_the_cli_trains_a_text_lm_then_gives_it_eyes(tmp_path, small_mnist):
    """Notebook 10 from the command line, tiny: --task text, then --task eyes --lm on the folder it wrote; the LM
    inside the eyes is the text LM bit for bit, and the eyes' record measures the transfer and logs the gates."""
    text = ["--task", "text", "--steps", "3", "--batch-size", "8", *TINY_LM, "--out", str(tmp_path / "lm")]
    train_cli.main(text)
    lm, tokenizer = load_model(tmp_path / "lm", expect="GPT2LMHeadModel")
    record = json.loads((tmp_path / "lm" / "training.json").read_text())
    assert record["command"] == "python -m crossmodal.train " + " ".join(text) and record["steps"] == 3
    assert set(record["facts_right"]) == {"trained", "held_out"} and 0 <= record["test_exact_match"] <= 1
    assert lm.config.n_embd == 32 and lm.config.n_layer == 2

    eyes = ["--task", "eyes", "--lm", str(tmp_path / "lm"), "--steps", "3", "--batch-size", "4", "--test-every", "100",
            "--out", str(tmp_path / "eyes")]
    train_cli.main(eyes)
    model, eyes_tokenizer = load_model(tmp_path / "eyes", expect="Flamingo")
    record = json.loads((tmp_path / "eyes" / "training.json").read_text())
    assert record["command"] == "python -m crossmodal.train " + " ".join(eyes) and record["steps"] == 3
    assert record["transfer"]["read"]["images"] + record["transfer"]["held_out"]["images"] == 100
    assert set(record["transfer"]["read"]) == {"images", "level_one", "level_two", "chance"}
    assert [entry["step"] for entry in record["logged"]] == [1, 2, 3]
    assert torch.tensor([entry["gates"] for entry in record["logged"]]).shape == (3, 1, 2)  # one gated layer
    inside = {k.replace(".block.", "."): v for k, v in model.lm.state_dict().items() if ".xattn." not in k}
    assert inside.keys() == lm.state_dict().keys()
    assert all(torch.equal(inside[k], v) for k, v in lm.state_dict().items())  # the text LM, frozen
    assert eyes_tokenizer.get_vocab() == tokenizer.get_vocab()

    with pytest.raises(SystemExit, match="--resume continues .* --captions-only True"):  # another recipe
        train_cli.main([*eyes, "--resume", "--captions-only", "true"])
    with pytest.raises(SystemExit, match="already holds files"):
        train_cli.main(eyes)
    with pytest.raises(SystemExit, match="--task text, not eyes"):  # a text run is not resumed as eyes
        train_cli.main(["--task", "eyes", "--resume", "--out", str(tmp_path / "lm")])
    with pytest.raises(SystemExit, match="--init-from takes the model of .*: drop --lm"):
        train_cli.main(["--task", "eyes", "--init-from", str(tmp_path / "eyes"), "--lm", str(tmp_path / "lm"),
                        "--out", str(tmp_path / "again")])
    with pytest.raises(SystemExit, match="holds a GPT2LMHeadModel; --task eyes trains a Flamingo"):
        train_cli.main(["--task", "eyes", "--init-from", str(tmp_path / "lm"), "--out", str(tmp_path / "again")])
    with pytest.raises(SystemExit, match="--test-every must be from 1 to 10,000"):
        train_cli.main(["--task", "eyes", "--test-every", "0", "--out", str(tmp_path / "again")])
    assert not (tmp_path / "again").exists()  # every refusal before anything is written
