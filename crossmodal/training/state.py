"""A run's checkpoint: the model's folder (serialization.py's format) plus what resuming needs, written as a unit.

    model.safetensors, config.json, tokenizer files    the model, loadable on its own
    optimizer.safetensors                               AdamW's moments, one tensor per parameter and kind
    stepped.safetensors                                 with a weight average (TrainConfig.ema): the weights the
                                                        optimizer steps; model.safetensors holds their average
    trainer_state.json                                  step, TrainConfig, the task and its options, history

`--resume` reads it back and continues step for step; a checkpoint made with other settings is refused, as
resuming with, say, more epochs would silently change the learning-rate schedule of the steps already taken.
"""

import json
import math
from dataclasses import asdict, fields
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from ..folders import OPTIMIZER, STEPPED, TRAINER_STATE, WEIGHTS, read_json, recover, replacing
from ..nn.serialization import write_model
from .config import TrainConfig
from .flags import flatten_json


def save_state(folder, model, tokenizer, optimizer, cfg, step, history, run=None, average=None):
    """Write the model, the optimizer's state and the trainer's (step, settings, history) into `folder`, as a unit.

    run: what else identifies the run, e.g. {"task": "captions", "task_options": {...}}; checked on resume.
    average: the run's WeightAverage (TrainConfig.ema), if any: the model folder then holds the averaged weights,
    which are what a user loads, and the weights the optimizer steps go beside them (STEPPED), for resuming.
    """
    state = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in state["state"].items() for k, v in s.items()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]]
    meta = {"step": step, "train_config": asdict(cfg), **(run or {}), "param_groups": groups, "history": history}
    with replacing(folder) as new:
        write_model(average.model if average is not None else model, new, tokenizer)
        if average is not None:
            save_model(model, str(new / STEPPED))
        save_file(tensors, new / OPTIMIZER)
        (new / TRAINER_STATE).write_text(json.dumps(meta))


def load_state(folder, model, optimizer, cfg, run=None, average=None):
    """Restore the model and optimizer save_state wrote (and the weight average, if the run keeps one); returns
    (step, history).

    Refuses (ValueError) a checkpoint made with other settings: another TrainConfig, model config or task.
    """
    recover(folder)
    folder = Path(folder)
    if not (folder / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"{folder} holds no training to resume (no {TRAINER_STATE}); start a new run, "
                                "or give the folder a run was saved in")
    meta, _ = read_trainer_state(folder)
    saved = flatten_json({**meta.get("train_config", {}), **{k: meta.get(k) for k in (run or {})},
                          "model": {k: v for k, v in read_json(folder / "config.json").items() if k not in VOLATILE}})
    config = model.config_json() if hasattr(model, "config_json") else model.config.to_dict()
    ours = flatten_json({**asdict(cfg), **(run or {}), "model": {k: v for k, v in config.items() if k not in VOLATILE}})
    changed = [f"{k} {saved.get(k)!r} → {v!r}" for k, v in ours.items() if saved.get(k) != v]
    if changed:
        raise ValueError(f"{folder} was trained with other settings ({'; '.join(changed[:4])}); resume continues a "
                         "run unchanged: use its settings, or train a new run in another folder")
    try:
        load_model(model, str(folder / (STEPPED if average is not None else WEIGHTS)))
        if average is not None:
            load_model(average.model, str(folder / WEIGHTS))
        state = {}
        for key, value in load_file(folder / OPTIMIZER).items():
            i, name = key.split(".", 1)
            state.setdefault(int(i), {})[name] = value
        groups = optimizer.state_dict()["param_groups"]
        for group, saved_group in zip(groups, meta["param_groups"]):
            group.update(saved_group)
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except SafetensorError as err:  # the weights, the stepped weights or the optimizer's moments
        raise ValueError(f"a file of {folder} is corrupt or truncated ({err}): the run cannot go on from it; start "
                         f"a new run (--init-from {folder} keeps its weights)") from None
    except (ValueError, KeyError, RuntimeError, OSError) as err:
        raise ValueError(f"{folder} cannot be resumed by this version ({str(err).splitlines()[0]}); "
                         "start a new run") from None
    return meta["step"], meta["history"]


def read_trainer_state(folder):
    """(trainer_state.json as a dict, its TrainConfig), every field checked, and the optimizer file's header read:
    a damaged or edited state is refused with a sentence before anything is trained, never half way or after.

    The step must be the number of losses the history holds (one per step, as the trainer records them).
    """
    path = Path(folder) / TRAINER_STATE
    meta = read_json(path)

    def refuse(what):
        raise ValueError(f"{path} is damaged or was edited ({what}): the run cannot go on from it; start a new run "
                         f"(--init-from {folder} keeps its weights)")

    kinds = {"step": int, "train_config": dict, "history": dict, "param_groups": list}
    for key, kind in kinds.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            refuse(f"its {key!r} is {'missing' if key not in meta else repr(meta[key])[:40]}, not a {kind.__name__}")
    known = {f.name for f in fields(TrainConfig)}
    if unknown := sorted(set(meta["train_config"]) - known):
        refuse(f"its train_config has fields TrainConfig does not: {', '.join(unknown[:3])}")
    cfg = TrainConfig(**meta["train_config"])
    try:
        cfg.check()
    except ValueError as err:
        refuse(f"its train_config: {err}")
    history = meta["history"]
    numbers = {"train_seconds": history.get("train_seconds"), "eval_seconds": history.get("eval_seconds")}
    if not all(_number(v) and v >= 0 for v in numbers.values()):
        refuse(f"its history's seconds are {numbers}")
    if not isinstance(history.get("loss"), list) or not all(_number(v) for v in history["loss"]):
        refuse("its history's losses are not a list of numbers")
    evaluations = history.get("eval")
    if not isinstance(evaluations, list) or not all(isinstance(e, dict) and _number(e.get("step"))
                                                    and _number(e.get("train_seconds"))
                                                    and _number(e.get("exact_match", 0)) for e in evaluations):
        refuse("its history's evaluations are not a list of objects with a step, seconds and a score")
    logged = history.get("logged", [])
    if not isinstance(logged, list) or not all(isinstance(e, dict) for e in logged):
        refuse("its history's logged values are not a list of objects")
    if not all(isinstance(g, dict) for g in meta["param_groups"]):
        refuse("its param_groups are not a list of objects")
    if meta["step"] != len(history["loss"]):
        refuse(f"step {meta['step']}, but its history holds the losses of {len(history['loss'])} steps")
    if not isinstance(meta.get("task_options", {}), dict) or not isinstance(meta.get("task", ""), str):
        refuse("its task or task_options are not a name and an object")
    for name in (OPTIMIZER, STEPPED) if cfg.ema else (OPTIMIZER,):  # with a weight average, the stepped weights too
        try:
            with safe_open(str(Path(folder) / name), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{Path(folder) / name} is missing, corrupt or truncated ({err}): the run cannot go on "
                             f"from it; start a new run (--init-from {folder} keeps its weights)") from None
    return meta, cfg


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


VOLATILE = {"architectures", "vocabulary", "fingerprint", "transformers_version", "_name_or_path"}  # not settings
