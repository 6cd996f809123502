"""One checkpoint folder format for every model: model.safetensors, config.json and the tokenizer's files.

config.json names the model's class under "architectures", as transformers' does, and holds what rebuilds it.
Reading checks each file before anything is built, so a damaged or foreign checkpoint costs no memory and
gets one sentence naming the file at fault:

1. the files are there, and config.json is a valid config of its class, within sane sizes;
2. the tokenizer loads, and its vocabulary size and special tokens are the ones the config names;
3. the weights file's header (read alone, no tensor loaded) names exactly the tensors a model of that config
   has, with its shapes and floating-point types;
4. the folder holds what was saved together (`fingerprint`); only then is the model built and the weights loaded;
5. every weight loaded is finite, and every variance (a BatchNorm's running_var) is 0 or more.

What a checkpoint promises: its config.json records a fingerprint, SHA-256 digests of the weights file, of the
config's own settings and of the tokenizer's files, made when they were saved together. Anything that changes
what the model writes is in one of the three, so a folder loads only as the whole it was saved as: an edited
setting (a number of heads, the pixels' mean, an activation), a swapped or re-normalised tokenizer, or weights
from another save are refused, naming the file. A folder with no fingerprint (saved by an older crossmodal) is
refused too; `stamp(folder)` records one for a folder you trust.

A model class takes part by offering `config_from_json(dict)`, `from_config(config, tokenizer)` and
`config_json()`; auto.py lists the classes. Nothing here is ever downloaded.
"""

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model as load_safetensors
from safetensors.torch import save_model

from ..folders import CONFIG, TOKENIZER, WEIGHTS, read_json, readable_folder, write_json
from .memory import check_fits, model_bytes

FLOAT_TYPES = {"F16", "BF16", "F32", "F64"}  # safetensors' names for floating-point tensors
# every file a tokenizer is read from (transformers' names); those present are fingerprinted
TOKENIZER_FILES = (TOKENIZER, "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "added_tokens.json", "vocab.json", "merges.txt")
NOT_SETTINGS = ("architectures", "vocabulary", "fingerprint")  # config.json's keys that are not the config's


def write_model(model, folder, tokenizer=None):
    """model.safetensors, the tokenizer's files and config.json (with the fingerprint of all three) into an existing
    folder (see folders.replacing for writing them as a unit)."""
    save_model(model, str(folder / WEIGHTS))  # safetensors stores a tied tensor once
    if hasattr(model, "config_json"):
        config = model.config_json()
    else:  # a transformers model: its own config, named as transformers names it
        config = {**model.config.to_dict(), "architectures": [type(model).__name__]}
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    config["fingerprint"] = fingerprint(folder, config)
    (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def fingerprint(folder, config):
    """{"weights", "config", "tokenizer"}: SHA-256 digests of model.safetensors, of the config's values (config.json
    without its fingerprint) and of the tokenizer's files present in `folder`."""
    settings = json.dumps({k: v for k, v in config.items() if k != "fingerprint"}, sort_keys=True)
    tokenizer = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if (Path(folder) / name).is_file():
            tokenizer.update(f"{name}:{_text_digest(Path(folder) / name)};".encode())
    return {"weights": _digest(Path(folder) / WEIGHTS), "config": hashlib.sha256(settings.encode()).hexdigest(),
            "tokenizer": tokenizer.hexdigest()}


def _text_digest(path):
    """SHA-256 of a tokenizer file's content: JSON as its values, other text with its line ends as "\n", so that a
    checkout that rewrites line ends (git's autocrlf) keeps the fingerprint; an undecodable file, its bytes."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
        text = json.dumps(json.loads(text), sort_keys=True) if path.suffix == ".json" else text.replace("\r\n", "\n")
    except (UnicodeDecodeError, ValueError, RecursionError):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):  # a megabyte at a time: any size of file
            digest.update(block)
    return digest.hexdigest()


def check_fingerprint(folder, config):
    """Refuse (ValueError) a folder whose files are not the ones saved together with its config.json."""
    saved = config.get("fingerprint")
    if not isinstance(saved, dict):
        raise ValueError(f"{folder / CONFIG} records no fingerprint of the files saved with it (an older crossmodal "
                         "wrote it, or it was removed), so nothing shows that its settings, tokenizer and weights "
                         "belong together; if you trust the folder, record one with crossmodal.nn.serialization."
                         "stamp(folder) and load it again")
    found = fingerprint(folder, config)
    if saved.get("weights") != found["weights"]:
        raise ValueError(f"{folder / WEIGHTS} is not the weights file this model was saved with (config.json's "
                         "fingerprint records another): the files come from different saves, or it was damaged")
    if saved.get("tokenizer") != found["tokenizer"] and not (folder / TOKENIZER).is_file():
        raise ValueError(f"{folder} holds a model but no tokenizer ({TOKENIZER}), though one was saved with it: copy "
                         "the checkpoint's tokenizer back, or save or download the checkpoint again")
    if saved.get("tokenizer") != found["tokenizer"]:
        raise ValueError(f"{folder / TOKENIZER} is not the tokenizer this model was saved with (its files differ from "
                         "the fingerprint config.json records): the files come from different checkpoints or were "
                         "edited")
    if saved.get("config") != found["config"]:
        raise ValueError(f"{folder / CONFIG} is not the config this model was saved with (its settings differ from the "
                         "fingerprint it records): the weights were trained with the recorded ones; save or download "
                         "the checkpoint again")


def stamp(folder):
    """Record in `folder`'s config.json the fingerprint of the files it now holds, for a checkpoint you trust that an
    older crossmodal saved (it had none). Returns the fingerprint."""
    folder = readable_folder(folder)
    config = {k: v for k, v in read_json(folder / CONFIG).items() if k not in ("vocabulary", "fingerprint")}
    config["fingerprint"] = fingerprint(folder, config)
    write_json(folder / CONFIG, config)
    return config["fingerprint"]


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
        return raw, kind.config_from_json({k: v for k, v in raw.items() if k not in NOT_SETTINGS})
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
            meta = kind.from_config(config, tokenizer)  # a tokenizer that does not fit the config (its size, its
    except ValueError as err:  # special tokens' ids) is refused here
        raise ValueError(f"{folder}: {err}") from None
    except (TypeError, ZeroDivisionError, RuntimeError, ImportError, KeyError) as err:
        raise ValueError(f"{folder / CONFIG} does not describe a model that can be built: {err}") from None
    check_header(folder / WEIGHTS, meta.state_dict(keep_vars=True))
    check_fits(model_bytes(meta), f"{folder} holds a model of {sum(p.numel() for p in meta.parameters()):,} "
               "parameters, which", device)
    check_fingerprint(folder, raw)
    model = kind.from_config(config, tokenizer)
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
    negative = next((name for name, t in model.state_dict().items() if name.endswith("running_var") and (t < 0).any()),
                    None)
    if negative:  # a variance below 0 is no variance: the normalisation would take a root of it
        raise ValueError(f"{folder / WEIGHTS} holds negative variances (in {negative}): the file is damaged; use "
                         "another checkpoint")
    return model.to(device).eval(), tokenizer


def read_tokenizer(folder, config):
    """The folder's tokenizer (checked against config.json by the model's from_config and by the fingerprint)."""
    from transformers import PreTrainedTokenizerFast

    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    except Exception as err:  # the tokenizers library raises its own kinds for broken JSON
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"cannot read the tokenizer in {folder} ({folder / TOKENIZER}: {reason}); "
                         "save or download the checkpoint again") from None
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
