"""Damaged checkpoints and awkward pictures: refused with a sentence, or read right, never misread in silence
(issue #30). Each case here once loaded and answered wrongly, or raised a traceback."""

import json
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from crossmodal import BlankImageError, VisionLanguageModel, load_answerer, load_reader, preprocess_number
from crossmodal.images import preprocess_drawing
from crossmodal.tasks.numbers import read_number
from crossmodal.tasks.questions import answer_questions, answer_with_maps

# --- checkpoints ------------------------------------------------------------------------------------------


def saved(model, folder):
    model.save_pretrained(folder)
    return folder


def edit_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def test_int64_weights_are_refused_not_cast(tiny_model, tmp_path):
    folder = saved(tiny_model, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    tensors["decoder.ln_f.weight"] = tensors["decoder.ln_f.weight"].long()
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ValueError, match="decoder.ln_f.weight holds I64 numbers, not floating-point weights"):
        VisionLanguageModel.from_pretrained(folder)


def test_a_tensor_missing_from_the_file_is_named(tiny_model, tmp_path):
    folder = saved(tiny_model, tmp_path)
    tensors = load_file(folder / "model.safetensors")
    del tensors["decoder.ln_f.bias"]
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ValueError, match="decoder.ln_f.bias is missing"):
        VisionLanguageModel.from_pretrained(folder)


@pytest.mark.parametrize("damage, message", [
    (lambda special: special.update(eos_token="7"), "eos_id is 2 in the config but"),
    (lambda special: special.update(bos_token="<eos>", eos_token="<bos>"), "bos_id is 1 in the config but 2"),
])
def test_special_tokens_that_do_not_match_the_config_are_refused(tiny_model, tmp_path, damage, message):
    folder = saved(tiny_model, tmp_path)
    edit_json(folder / "tokenizer_config.json", damage)
    with pytest.raises(ValueError, match="tokenizer"):  # its fingerprint, or its special tokens' ids
        VisionLanguageModel.from_pretrained(folder)
    edit_json(folder / "config.json", lambda c: c.pop("fingerprint"))  # the model's own checks come first
    with pytest.raises(ValueError, match=message):
        VisionLanguageModel.from_pretrained(folder)


def test_a_chat_template_that_is_not_the_librarys_is_refused(tmp_path):
    folder = saved(load_answerer(), tmp_path)
    (folder / "chat_template.jinja").write_text("{% for a in range(10**9) %}{% for b in range(10**9) %}{% endfor %}"
                                                "{% endfor %}")  # a template is a program: this one never ends
    with pytest.raises(ValueError, match="chat template is not the one crossmodal writes"):
        VisionLanguageModel.from_pretrained(folder)


def test_garbage_files_are_named(tiny_model, tmp_path):
    folder = saved(tiny_model, tmp_path)
    (folder / "tokenizer.json").write_text("not json at all")
    with pytest.raises(ValueError, match="tokenizer.json"):
        VisionLanguageModel.from_pretrained(folder)
    folder = saved(tiny_model, tmp_path / "second")
    (folder / "model.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match="model.safetensors is corrupt or truncated"):
        VisionLanguageModel.from_pretrained(folder)
    folder = saved(tiny_model, tmp_path / "third")
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)  # nested past Python's recursion limit
    with pytest.raises(ValueError, match="cannot read .*config.json \\(not valid JSON"):
        VisionLanguageModel.from_pretrained(folder)


def test_a_flamingo_config_too_large_to_build_is_refused_before_building(tmp_path, monkeypatch):
    from crossmodal.nn.auto import load_model
    from crossmodal.pretrained import shipped_dir

    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((shipped_dir("gpt2-eyes") / name).read_bytes())
    edit_json(tmp_path / "config.json", lambda c: c["lm"].update(n_embd=8192, n_layer=24, n_head=32))

    def only_on_meta(module, real=torch.nn.LayerNorm.reset_parameters):
        assert module.weight.is_meta, "the model was built before its checkpoint was checked"
        real(module)

    monkeypatch.setattr(torch.nn.LayerNorm, "reset_parameters", only_on_meta)
    with pytest.raises(ValueError, match="does not fit its config.json"):
        load_model(tmp_path)


# --- issue #39: what a checkpoint promises on load (nn/serialization.py's fingerprint) ----------------------------


def _shipped_copy(name, folder):
    from crossmodal.pretrained import shipped_dir

    folder.mkdir()
    for path in shipped_dir(name).iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def _swap_two_ids(folder):
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab["e"], vocab["s"] = vocab["s"], vocab["e"]
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))


def _seven_reads_as_one(folder):
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["normalizer"] = {"type": "Replace", "pattern": {"String": "7"}, "content": "1"}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))


def _another_saves_weights(folder):
    from safetensors.torch import save_model

    model = VisionLanguageModel.from_pretrained(folder)
    with torch.no_grad():
        model.decoder.ln_f.weight += 0.01  # the weights of another step of training
    save_model(model, str(folder / "model.safetensors"))


CHECKPOINT_EDITS = [  # (shipped model, what is done to its folder, the words of the sentence)
    ("captioner", lambda f: edit_json(f / "config.json", lambda c: c["decoder"].update(num_heads=2)),
     "config.json is not the config this model was saved with"),
    ("captioner", lambda f: edit_json(f / "config.json", lambda c: c["vision"].update(mean=[0.9])),
     "config.json is not the config this model was saved with"),
    ("captioner", _swap_two_ids, "tokenizer.json is not the tokenizer this model was saved with"),
    ("captioner", lambda f: (edit_json(f / "config.json", lambda c: c.pop("fingerprint")), _swap_two_ids(f)),
     "records no fingerprint"),
    ("captioner", _another_saves_weights, "model.safetensors is not the weights file this model was saved with"),
    ("answerer", _seven_reads_as_one, "tokenizer.json is not the tokenizer this model was saved with"),
    ("answerer", lambda f: (f / "chat_template.jinja").unlink(), "is not the tokenizer this model was saved with"),
    ("text-lm", lambda f: edit_json(f / "config.json", lambda c: c.update(activation_function="relu")),
     "config.json is not the config this model was saved with"),
    ("text-lm", lambda f: edit_json(f / "config.json", lambda c: c.update(activation_function="bogus")),
     "activation_function must be one of transformers'"),
    ("text-lm", lambda f: edit_json(f / "config.json", lambda c: c.update(layer_norm_epsilon=1e6)),
     "layer_norm_epsilon must be a small number above 0"),
    ("text-lm", lambda f: edit_json(f / "config.json", lambda c: c.update(n_layer="4")), "n_layer"),
    ("text-lm", lambda f: edit_json(f / "config.json", lambda c: c.update(_attn_implementation="flash_attention_2")),
     "_attn_implementation must be 'eager' or 'sdpa'"),
    ("gpt2-eyes", lambda f: edit_json(f / "config.json", lambda c: c["vision"].update(mean=[float("nan")])),
     "vision.mean must be finite"),
    ("gpt2-eyes", lambda f: edit_json(f / "config.json", lambda c: c["vision"].update(depth=10**6)),
     "vision.depth is 1000000, more than this library builds"),
    ("gpt2-eyes", lambda f: edit_json(f / "config.json", lambda c: c.update(gated="yes")),
     "gated must be of type bool"),
    ("gpt2-eyes", lambda f: edit_json(f / "config.json", lambda c: c["lm"].update(resid_pdrop=2.0)),
     "resid_pdrop must be a dropout probability"),
]


@pytest.mark.parametrize("name, damage, words", CHECKPOINT_EDITS, ids=[f"{n}: {w}"[:50] for n, _, w in
                                                                        CHECKPOINT_EDITS])
def test_a_checkpoint_loads_only_as_the_whole_it_was_saved_as(tmp_path, name, damage, words):
    from crossmodal.nn.auto import load_model

    folder = _shipped_copy(name, tmp_path / name)
    load_model(folder)  # whole, it loads
    damage(folder)
    with pytest.raises(ValueError, match=re.escape(words)) as error:
        load_model(folder)
    assert str(folder) in str(error.value)  # names the folder (and the file) at fault


def test_a_trusted_folder_is_stamped_and_a_stamped_folder_is_still_checked(tmp_path):
    """stamp() records the fingerprint of an older checkpoint; a variance below 0, stamped or not, is refused."""
    from crossmodal.nn.serialization import stamp
    from crossmodal.tasks.captions import new_captioner

    from .conftest import tiny_config

    config = tiny_config()
    config.vision.stem, config.vision.patch_size = "conv", 4  # its BatchNorm keeps running variances
    model = saved(new_captioner(config), tmp_path / "conv")
    edit_json(model / "config.json", lambda c: c.pop("fingerprint"))
    with pytest.raises(ValueError, match="records no fingerprint"):
        VisionLanguageModel.from_pretrained(model)
    stamp(model)
    VisionLanguageModel.from_pretrained(model)
    tensors = load_file(model / "model.safetensors")
    name = next(k for k in tensors if k.endswith("running_var"))
    tensors[name] = -tensors[name]
    save_file(tensors, model / "model.safetensors")
    stamp(model)
    with pytest.raises(ValueError, match=f"holds negative variances \\(in {re.escape(name)}\\)"):
        VisionLanguageModel.from_pretrained(model)


# --- pictures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def number_1767():
    """The fixed test set's fourth number, a handwritten 1767, as white ink on black bytes (28, 112)."""
    from crossmodal.data.numbers import test_numbers

    return test_numbers()[3:4].images[0, 0].numpy()


def test_a_number_the_readers_size_goes_through_the_same_contract(number_1767, tmp_path):
    reader = load_reader()
    assert read_number(reader, number_1767) == "1767"
    assert read_number(reader, 255 - number_1767) == "1767"  # dark ink on light paper, at the canvas size
    assert read_number(reader, torch.from_numpy(number_1767)[None].expand(3, -1, -1) / 255) == "1767"  # (3, 28, 112)
    rotated = Image.fromarray(number_1767).rotate(180)
    exif = Image.Exif()
    exif[0x0112] = 3  # EXIF orientation 3: shown upside down, the photo's own pixels are upside down too
    rotated.info["exif"] = exif.tobytes()
    rotated.save(tmp_path / "photo.jpg", exif=exif.tobytes(), quality=95)
    assert read_number(reader, Image.open(tmp_path / "photo.jpg")) == "1767"


def test_a_pil_picture_or_a_read_only_array_reads_without_a_warning(number_1767):
    """PyTorch warns "NumPy array is not writable" when given a PIL image's bytes as they are (issue #31)."""
    read_only = number_1767.copy()
    read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_number(load_reader(), Image.fromarray(number_1767)) == "1767"
        assert read_number(load_reader(), read_only) == "1767"


@pytest.mark.parametrize("convert", [
    lambda a: Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=4),  # a 4-colour palette
    lambda a: a.astype(np.uint16) * 257,  # 16-bit grey
    lambda a: a.astype(np.int32) * 1000,  # 32-bit whole numbers: darkest to lightest
    lambda a: Image.fromarray(a.astype(np.float32)),  # PIL float mode, values 0–255
])
def test_pictures_of_other_modes_read_as_the_bytes_do(number_1767, convert):
    assert read_number(load_reader(), convert(number_1767)) == "1767"


def test_light_ink_on_mid_grey_paper_is_ink():
    card = np.full((100, 100), 0.6, dtype=np.float32)
    card[25:75, 45:52] = 0.9  # a pale stroke on grey card: 30% brighter than the paper
    assert preprocess_drawing(card).max() == 1
    chalk = np.full((100, 100), 0.2, dtype=np.float32)
    chalk[25:75, 45:52] = 0.05  # a dark stroke on dark paper
    assert preprocess_drawing(chalk).max() == 1


def test_huge_pictures_are_reduced_first_not_converted_whole():
    import tracemalloc

    array = np.zeros((20_000, 20_000), dtype=np.uint8)  # 400 MB of bytes; as floats it would take 1.6 GB more
    array[4000:16000, 9000:11000] = 255
    tracemalloc.start()
    seen = preprocess_drawing(array)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seen.shape == (1, 28, 28) and seen.max() == 1
    assert peak < 200 * 1024**2, f"{peak / 1024**2:.0f} MiB"
    picture = Image.new("L", (9000, 9000), 255)
    ImageDraw.Draw(picture).line([(4500, 1000), (4500, 8000)], fill=0, width=300)
    assert preprocess_number(picture).max() == 1


# --- answers -------------------------------------------------------------------------------------------------


def test_the_answerer_refuses_a_blank_picture_and_a_question_of_spaces(number_1767):
    answerer = load_answerer()
    with pytest.raises(BlankImageError):
        answer_with_maps(answerer, torch.zeros(1, 28, 112), "Is there a 7?")
    with pytest.raises(ValueError, match="only spaces"):
        answer_with_maps(answerer, torch.from_numpy(number_1767)[None] / 255, "   ")
    with pytest.raises(ValueError, match="batch_size"):
        answer_questions(answerer, torch.from_numpy(number_1767)[None, None] / 255, ["Is there a 7?"], batch_size=-1)


def test_read_number_refuses_a_model_that_is_not_a_reader(number_1767):
    with pytest.raises(ValueError, match="answers questions"):
        read_number(load_answerer(), number_1767)


def test_continue_text_checks_its_images_and_its_prompt(mnist_test):
    from crossmodal import load_gpt2_eyes
    from crossmodal.tasks.transfer import continue_text

    eyes, tokenizer = load_gpt2_eyes()
    one = mnist_test[0][0, 0]  # (28, 28): one image, not 28 rows
    assert len(continue_text(eyes, tokenizer, one, "", max_new_tokens=4)) == 1
    with pytest.raises(ValueError, match="characters the language model never read"):
        continue_text(eyes, tokenizer, one, "The number after it is Ω")
    with pytest.raises(ValueError, match="control token"):
        continue_text(eyes, tokenizer, one, "This is the number<eos>")


def test_missing_mnist_names_the_files_of_the_split_asked_for(tmp_path, monkeypatch):
    from crossmodal.data import mnist

    monkeypatch.setenv("CROSSMODAL_DATA", str(tmp_path))
    monkeypatch.setattr("torchvision.datasets.MNIST.download", lambda self: (_ for _ in ()).throw(
        RuntimeError("Error downloading train-images-idx3-ubyte.gz:")))
    with pytest.raises(RuntimeError, match="t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte are not in") as error:
        mnist.load_mnist(train=False)
    assert "train-images" not in str(error.value)
