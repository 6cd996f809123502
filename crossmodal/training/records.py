"""A run's record, training.json: how its checkpoint was made (the command, the machine) and what it measured.

One writer for every task. The record is written atomically beside the checkpoint, and a run started from
another one (--init-from, --warm-start) nests that run's record, so a shipped model's training.json tells its
whole story, command by command.
"""

import platform

import torch

from ..devices import describe
from ..folders import RECORD, read_json, write_json

MOST_LOSS_POINTS = 1000  # a long run's loss curve is averaged over windows, to keep the record small


def run_record(command, history, device, processes=1):
    """The record of a finished run, from the trainer's history: JSON-ready."""
    final = history["eval"][-1] if history["eval"] else {}
    losses = history["loss"]
    every = max(1, -(-len(losses) // MOST_LOSS_POINTS))
    curve = [round(sum(losses[i : i + every]) / len(losses[i : i + every]), 4) for i in range(0, len(losses), every)]
    record = {
        "command": command,
        "train_seconds": round(history["train_seconds"], 1), "eval_seconds": round(history["eval_seconds"], 1),
        "steps": len(losses),
        **({"test_exact_match": final["exact_match"]} if "exact_match" in final else {}),
        **{k: v for k, v in final.items() if k not in ("step", "train_seconds", "exact_match")},
        "threads": torch.get_num_threads(), "device": describe(device), "processes": processes,
        "torch": torch.__version__, "platform": platform.processor() or platform.machine(),
        "evaluations": evaluation_curve(history),
        "loss": {"every": every, "mean": curve},  # the training loss, averaged over each `every` steps
    }
    if history.get("logged"):
        record["logged"] = history["logged"]
    return record


def evaluation_curve(history):
    """Every evaluation of a run, short: step, training seconds so far, exact match (and the CER of a reader)."""
    return [{"step": e["step"], "train_seconds": round(e["train_seconds"], 1),
             **{k: e[k] for k in ("exact_match", "cer") if k in e}} for e in history["eval"]]


def earlier_run(folder):
    """The record of the run a checkpoint folder holds (to nest in a run started from it), or its path if it has none
    or it cannot be read."""
    try:
        return read_json(folder / RECORD)
    except ValueError:
        return str(folder)


def write_record(folder, record):
    write_json(folder / RECORD, record)
