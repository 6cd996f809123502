"""Checkpoint folders: written as a unit, read with every file checked before anything is built.

A checkpoint is several files (weights, config, tokenizer, and while training the optimizer and
step). Writing them one after another into the folder in use would leave a mix of two steps if the
process died half way. So `replacing(folder)` writes a complete new folder beside the old one and
swaps the two with renames: at any moment there is one whole checkpoint, the old or the new.
"""

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from .config import CaptionerConfig, check_config
from .flags import flatten

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
OPTIMIZER, TRAINER_STATE, RECORD = "optimizer.safetensors", "trainer_state.json", "training.json"
# the files crossmodal writes as a set; anything else in a checkpoint folder is the user's and is kept
OWN_FILES = {WEIGHTS, CONFIG, TOKENIZER, "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
             OPTIMIZER, TRAINER_STATE, RECORD}


def _siblings(folder):
    """The folder's absolute path, and its two temporary neighbours in the same parent (so renames are atomic)."""
    folder = Path(os.path.abspath(folder))
    return folder, folder.with_name(f".{folder.name}.saving"), folder.with_name(f".{folder.name}.replaced")


def foreign_files(folder):
    """Names in `folder` that are not a checkpoint's files: a checkpoint folder holds nothing else."""
    folder = Path(folder)
    return sorted(f.name for f in folder.iterdir() if f.name not in OWN_FILES) if folder.is_dir() else []


@contextmanager
def replacing(folder):
    """Yield an empty folder to write a whole checkpoint into; at the end it takes `folder`'s place.

    If the block raises, `folder` is left as it was. A folder holding other files is refused
    rather than swapped away with them.
    """
    folder, new, old = _siblings(folder)
    recover(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file: a checkpoint is a folder")
    if others := foreign_files(folder):
        raise ValueError(f"{folder} holds files that are not a checkpoint's ({', '.join(others[:3])}): "
                         "save the checkpoint into a folder of its own")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    try:
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if folder.exists():
        folder.rename(old)
    new.rename(folder)  # the commit point: from here on `folder` is the new checkpoint
    shutil.rmtree(old, ignore_errors=True)


def recover(folder):
    """Tidy up after a save that was killed part way; afterwards `folder` holds one whole checkpoint."""
    folder, new, old = _siblings(folder)
    if old.exists() and not folder.exists():  # killed between the two renames: take the old one back
        old.rename(folder)
    shutil.rmtree(old, ignore_errors=True)  # killed after the swap, while deleting the old one
    shutil.rmtree(new, ignore_errors=True)  # killed while writing the new one


def write_model(model, folder):
    """model.safetensors, config.json and the tokenizer files, into an existing folder."""
    folder = Path(folder)
    save_model(model, str(folder / WEIGHTS))  # safetensors stores the tied embedding once
    (folder / CONFIG).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(folder)


def save_trainer_state(model, optimizer, cfg, step, history, folder):
    """The model's checkpoint plus what resuming needs (optimizer tensors, step, settings), as one unit."""
    state = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in state["state"].items() for k, v in s.items()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]]
    meta = {"step": step, "train_config": asdict(cfg), "param_groups": groups, "history": history}
    with replacing(folder) as new:
        write_model(model, new)
        save_file(tensors, new / OPTIMIZER)
        (new / TRAINER_STATE).write_text(json.dumps(meta))


def load_trainer_state(model, optimizer, cfg, folder):
    """Restore the model and optimizer saved by save_trainer_state; returns (step, history).

    Refuses a checkpoint made with other settings: resuming with, say, more epochs would silently
    change the learning-rate schedule of the steps already taken.
    """
    recover(folder)
    folder = Path(folder)
    if not (folder / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"{folder} holds no training to resume (no {TRAINER_STATE}); "
                                "train without resume to start one")
    meta = json.loads((folder / TRAINER_STATE).read_text())
    saved = {**meta["train_config"], **flatten(CaptionerConfig.from_dict(json.loads((folder / CONFIG).read_text())))}
    ours = {**asdict(cfg), **flatten(model.config)}
    changed = [f"{k} {saved.get(k)!r} → {v!r}" for k, v in ours.items() if saved.get(k) != v]
    if changed:
        raise ValueError(f"{folder} was trained with other settings ({'; '.join(changed)}); resume continues "
                         "a run unchanged: use its settings, or train a new run in another folder")
    load_model(model, str(folder / WEIGHTS))
    state = {}
    for key, value in load_file(folder / OPTIMIZER).items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    groups = optimizer.state_dict()["param_groups"]
    for group, saved_group in zip(groups, meta["param_groups"]):
        group.update(saved_group)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as err:  # saved before the weight-decay groups changed (train.param_groups)
        raise ValueError(f"{folder / OPTIMIZER} does not fit this version's optimizer ({err}); "
                         "start a new run") from None
    return meta["step"], meta["history"]


def read_json(path):
    """A checkpoint's JSON file, or a ValueError that says the checkpoint is damaged."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path} ({err}): the checkpoint is damaged; start a new run") from None


def load_captioner(cls, folder, device="cpu"):
    """Rebuild a `cls` (Captioner) from a checkpoint folder, checking each file before building the model.

    The config's types and ranges and the shapes in the weights file's header are checked first,
    so a broken checkpoint costs no memory and names the file at fault. Nothing is downloaded.
    """
    from transformers import PreTrainedTokenizerFast

    folder, _, old = _siblings(folder)
    if not folder.exists() and old.exists():  # a save was killed between its renames: read the old one
        folder = old
    missing = [f for f in (WEIGHTS, CONFIG, TOKENIZER) if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a crossmodal checkpoint: missing {missing}; "
                                "expected the files Captioner.save_pretrained() writes")
    try:
        config = CaptionerConfig.from_dict(json.loads((folder / CONFIG).read_text()))
        check_config(config)
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{folder / CONFIG} is not a valid captioner config: {err}") from None
    if config.vision.timm_model:
        _check_offline(config.vision.timm_model, folder / CONFIG)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    if len(tokenizer) != config.decoder.vocab_size:
        raise ValueError(f"tokenizer in {folder} has {len(tokenizer)} tokens but the config expects "
                         f"{config.decoder.vocab_size}: the files come from different checkpoints")
    try:
        with torch.device("meta"):  # the model's shapes, without allocating its memory
            expected = {name: tuple(t.shape) for name, t in cls(config).state_dict().items()}
    except (ValueError, TypeError, ZeroDivisionError) as err:
        raise ValueError(f"{folder / CONFIG} does not describe a model that can be built: {err}") from None
    check_shapes(folder / WEIGHTS, expected)
    model = cls(config, tokenizer)
    load_weights(model, folder / WEIGHTS)
    return model.to(device).eval()  # loading copies into the CPU parameters; then move them


def load_weights(model, path):
    """Load a safetensors file into `model` (strict), or a ValueError naming the file: corrupt, or not this model's."""
    try:
        load_model(model, str(path), strict=True)
    except SafetensorError as err:
        raise ValueError(f"{path} is corrupt or truncated ({err}); save or download it again") from None
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit its config.json: {err}") from None


def check_shapes(path, expected):
    """Every tensor in the safetensors file at `path` has the shape `expected` names ({name: shape}), read from
    its header alone; else a ValueError naming the file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is corrupt or truncated ({err}); save or download it again") from None
    wrong = [f"{name} is {shape}, the config needs {expected.get(name)}"
             for name, shape in found.items() if expected.get(name) != shape]
    if wrong:
        raise ValueError(f"{path} does not fit its config.json: {'; '.join(wrong[:3])}")


def _check_offline(name, path):
    import timm

    if not timm.is_model(name):
        raise ValueError(f"{path} names the timm model {name!r}, which timm does not have built in; "
                         "loading a checkpoint never downloads: build Captioner(config) yourself to fetch it")
