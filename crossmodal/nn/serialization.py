"""One checkpoint folder format for every model: model.safetensors, config.json and the tokenizer's files.

config.json names the model's class under "architectures", as transformers' does, and holds what rebuilds it.
Reading checks each file before anything is built, so a damaged or foreign checkpoint costs no memory and
gets one sentence naming the file at fault:

1. the files are there, and config.json is a valid config of its class, within sane sizes;
2. the tokenizer loads, and its vocabulary size and special tokens are the ones the config names;
3. the weights file's header (read alone, no tensor loaded) names exactly the tensors a model of that config
   has, with its shapes and floating-point types; only then is the model built and the weights loaded;
4. every weight loaded is finite.

A model class takes part by offering `config_from_json(dict)`, `from_config(config, tokenizer)` and
`config_json()`; auto.py lists the classes. Nothing here is ever downloaded.
"""

import hashlib
import json

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model as load_safetensors
from safetensors.torch import save_model

from ..folders import CONFIG, TOKENIZER, WEIGHTS, read_json, readable_folder

FLOAT_TYPES = {"F16", "BF16", "F32", "F64"}  # safetensors' names for floating-point tensors


def write_model(model, folder, tokenizer=None):
    """model.safetensors, config.json (with a fingerprint of the tokenizer's vocabulary) and the tokenizer's files,
    into an existing folder (see folders.replacing for writing them as a unit)."""
    save_model(model, str(folder / WEIGHTS))  # safetensors stores a tied tensor once
    if hasattr(model, "config_json"):
        config = model.config_json()
    else:  # a transformers model: its own config, named as transformers names it
        config = {**model.config.to_dict(), "architectures": [type(model).__name__]}
    if tokenizer is not None:
        config["vocabulary"] = vocabulary_fingerprint(tokenizer)
        tokenizer.save_pretrained(folder)
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def vocabulary_fingerprint(tokenizer):
    """SHA-256 of the tokenizer's token → id table: an edited tokenizer.json no longer matches its config.json."""
    table = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=True)
    return hashlib.sha256(table.encode()).hexdigest()


def read_config(folder, kind):
    """(config dict, the kind's config) of a checkpoint folder, or a ValueError naming config.json."""
    folder = readable_folder(folder)
    missing = [f for f in (WEIGHTS, CONFIG) if not (folder / f).is_file()]
    if not folder.is_dir() or missing:
        why = "there is no such folder" if not folder.exists() else "it is not a folder" if not folder.is_dir() \
            else f"it lacks {', '.join(missing)}"
        raise ValueError(f"{folder} is not a saved model ({why}): expected the folder a crossmodal run or "
                         "save_pretrained() writes")
    raw = read_json(folder / CONFIG)
    named, wanted = raw.get("architectures"), getattr(kind, "architecture", kind.__name__)
    if isinstance(named, list) and named and wanted != "crossmodal" and named[0] != wanted:
        raise ValueError(f"{folder} holds a {named[0]}, not a {wanted}")
    try:
        return raw, kind.config_from_json({k: v for k, v in raw.items() if k not in ("architectures", "vocabulary")})
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise ValueError(f"{folder / CONFIG} is not a valid {getattr(kind, 'architecture', kind.__name__)} config: "
                         f"{err}") from None


def read_model(folder, kind, device="cpu"):
    """(model, tokenizer) of class `kind` from a checkpoint folder, every file checked first; eval mode."""
    folder = readable_folder(folder)
    raw, config = read_config(folder, kind)
    tokenizer = read_tokenizer(folder, raw) if (folder / TOKENIZER).is_file() else None
    try:
        with torch.device("meta"):  # the model's tensors, shapes and types without allocating their memory
            expected = kind.from_config(config).state_dict(keep_vars=True)
    except (ValueError, TypeError, ZeroDivisionError, RuntimeError) as err:
        raise ValueError(f"{folder / CONFIG} does not describe a model that can be built: {err}") from None
    check_header(folder / WEIGHTS, expected)
    try:
        model = kind.from_config(config, tokenizer)
    except ValueError as err:  # the tokenizer does not fit the config
        raise ValueError(f"{folder}: {err}") from None
    try:
        load_safetensors(model, str(folder / WEIGHTS), strict=True)
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{folder / WEIGHTS} is corrupt or truncated ({err}); save or download it again") from None
    except RuntimeError as err:
        raise ValueError(f"{folder / WEIGHTS} does not fit its config.json: {err}") from None
    bad = next((name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()),
               None)
    if bad:
        raise ValueError(f"{folder / WEIGHTS} holds NaN or infinite values (in {bad}): the training that wrote it "
                         "diverged or the file is damaged; use an earlier checkpoint")
    return model.to(device).eval(), tokenizer


def read_tokenizer(folder, config):
    """The folder's tokenizer, checked against config.json: its vocabulary (by fingerprint, when the config has one)
    and the special tokens' ids."""
    from transformers import PreTrainedTokenizerFast

    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    except Exception as err:  # the tokenizers library raises its own kinds for broken JSON
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"cannot read the tokenizer in {folder} ({folder / TOKENIZER}: {reason}); "
                         "save or download the checkpoint again") from None
    if "vocabulary" in config and config["vocabulary"] != vocabulary_fingerprint(tokenizer):
        raise ValueError(f"{folder / TOKENIZER} is not the tokenizer this model was saved with (its vocabulary "
                         "differs from the one config.json records): the files come from different checkpoints "
                         "or were edited")
    return tokenizer


def check_header(path, expected):
    """The safetensors file at `path` holds the tensors `expected` ({name: tensor}, a meta model's state_dict)
    with their shapes, floating-point where they are, read from its header alone; else a ValueError naming it.

    A tensor tied to another (GPT-2's output layer and token table) may be stored once under either name.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {name: (tuple(f.get_slice(name).get_shape()), f.get_slice(name).get_dtype()) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is corrupt or truncated ({err}); save or download it again") from None
    problems = [f"{name} is not a tensor of this model" for name in found if name not in expected]
    for name, (shape, dtype) in found.items():
        if name in expected and shape != tuple(expected[name].shape):
            problems.append(f"{name} is {shape}, the config needs {tuple(expected[name].shape)}")
        elif name in expected and expected[name].is_floating_point() and dtype not in FLOAT_TYPES:
            problems.append(f"{name} holds {dtype} numbers, not floating-point weights")
    tied = {}
    for name, tensor in expected.items():
        tied.setdefault(id(tensor), []).append(name)
    problems += [f"{' / '.join(names)} is missing" for names in tied.values() if not any(n in found for n in names)]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"{path} does not fit its config.json: {'; '.join(problems[:3])}{more}")
