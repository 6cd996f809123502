"""Train the MNIST captioner by next-character prediction.

    python -m crossmodal.train                      # defaults: about 5 minutes on a 2-core CPU
    python -m crossmodal.train --epochs 30 --out runs/long
    python -m crossmodal.train --decoder.gated true --out runs/gated   # any config field is a flag
    python -m crossmodal.train --out runs/long --resume                # after an interruption

AdamW (weight decay on the weight matrices only, see `param_groups`) with linear warm-up then
cosine decay, gradient clipping, a tqdm progress bar, evaluation by caption exact match on the
10,000 MNIST test images, and checkpoints (safetensors + JSON, replaced as a unit) that
`--resume` continues from, step for step, after an interruption. A folder that already holds a
run is never overwritten unless `--overwrite` says so.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import RECORD, TRAINER_STATE, foreign_files, load_trainer_state, read_json, recover, save_trainer_state
from .config import CaptionerConfig, check_config, check_types
from .data import caption_batches, load_mnist
from .devices import describe, pick_device, synchronize
from .evaluate import evaluate
from .flags import add_flags, apply, flatten, given
from .model import Captioner
from .questions import KINDS
from .tasks import TASKS, base_config, default_model_config, new_model, task_data
from .warmstart import warm_start


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training images
    batch_size: int = 128  # images per optimizer step
    lr: float = 5e-3  # peak learning rate, reached after the warm-up
    weight_decay: float = 0.05  # AdamW's decay of the weight matrices (see param_groups)
    warmup_steps: int = 200  # steps of linear warm-up from 0 to lr
    min_lr_ratio: float = 0.05  # cosine decays to lr × this
    grad_clip: float = 1.0  # largest gradient norm; a larger gradient is scaled down to it
    augment: bool = True  # small random rotations, scalings and shifts of the training images
    augment_strokes: bool = True  # also make some images' strokes thicker, thinner or blurred (see augment.py)
    label_smoothing: float = 0.0  # share of each target's probability spread over the whole vocabulary
    question_kinds: str = ""  # questions: kinds asked in turn, e.g. contains,contains,read (a repeat asks it more)
    seed: int = 0  # data order and augmentation (and, from the command line, the initial weights)
    save_every: int = 500  # steps between checkpoints (and one after every epoch's evaluation)

    def check(self):
        """Raise ValueError naming the first setting that cannot train."""
        check_types(self)
        rules = {"epochs": (self.epochs >= 1, "1 or more"), "batch_size": (self.batch_size >= 1, "1 or more"),
                 "lr": (self.lr > 0, "above 0"), "weight_decay": (self.weight_decay >= 0, "0 or more"),
                 "warmup_steps": (self.warmup_steps >= 0, "0 or more"), "grad_clip": (self.grad_clip > 0, "above 0"),
                 "min_lr_ratio": (0 <= self.min_lr_ratio <= 1, "from 0 to 1"),
                 "label_smoothing": (0 <= self.label_smoothing < 1, "from 0 up to (not including) 1"),
                 "save_every": (self.save_every >= 1, "1 or more")}
        unknown = set(self.kinds_asked()) - set(KINDS)
        rules["question_kinds"] = (not unknown, f"a comma-separated list of {', '.join(KINDS)}")
        for name, (ok, expected) in rules.items():
            if not ok:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must be {expected}, got {getattr(self, name)!r}")

    def kinds_asked(self):  # "" asks each of questions.KINDS once, the test sets' mix
        return tuple(k.strip() for k in self.question_kinds.split(",")) if self.question_kinds else KINDS

    def lr_at(self, step, total_steps):
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, total_steps - self.warmup_steps)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def param_groups(model, weight_decay):
    """AdamW's parameter groups, by one explicit rule: decay the weight matrices, nothing else.

    Decayed: the weights of every nn.Linear and nn.Conv2d (the patch embedding), which includes the
    token embedding, because it *is* lm_head's weight (tied), as in nanoGPT.
    Not decayed: biases, LayerNorm scales and shifts, the position embeddings (the decoder's wpe and
    the ViT's pos_embed), a class token and the cross-attention gates. They shift or scale the
    activations; pulling them towards 0 only works against what they are for.
    """
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    decay = [p for p in model.parameters() if id(p) in matrices]  # parameters(): a tied tensor once
    no_decay = [p for p in model.parameters() if id(p) not in matrices]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(model, cfg, train_data, test_data=None, out=None, resume=False, callbacks=(), eval_every=None):
    """Train `model` in place, on its device; returns a history dict. Each callback is called as cb(step, loss).

    train_data: MNIST's (images, labels), captioned here; or a task's own stream of batches, an
    object with steps_per_epoch(batch_size) and batches(epoch, batch_size, seed, start) yielding
    (images, tokens) (numbers.NumberBatches), or (images, tokens, targets) with -100 where the loss
    must not count (questions.QuestionBatches: the answers only). test_data: (images, labels) for `evaluate`, or an
    object whose evaluate(model) returns a dict with "exact_match" (numbers.Numbers).
    With `out`, a checkpoint is saved there every cfg.save_every steps and after each epoch's
    evaluation; resume=True continues from it, and refuses a checkpoint made with other settings.
    With test_data, the model is evaluated after every epoch, and also every `eval_every` steps if
    given; each evaluation records the training seconds spent so far (evaluation time excluded).
    """
    cfg.check()
    device = model.device
    if hasattr(train_data, "batches"):
        steps_per_epoch = train_data.steps_per_epoch(cfg.batch_size)
        epoch_batches = lambda epoch, skip: train_data.batches(epoch, cfg.batch_size, cfg.seed, skip)  # noqa: E731
    else:
        images, labels = (t.to(device) for t in train_data)  # resident on the device: no copy per step
        steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
        epoch_batches = lambda epoch, skip: caption_batches(model.tokenizer, cfg, images, labels, epoch, skip,  # noqa: E731
                                                             steps_per_epoch)
    total_steps = cfg.epochs * steps_per_epoch
    fused = {"fused": True} if device.type == "cuda" else {}  # one kernel for the whole update on a GPU
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, **fused)
    history = {"loss": [], "eval": [], "train_seconds": 0.0, "eval_seconds": 0.0}
    step = 0
    if resume:
        if out is None:
            raise ValueError("resume=True needs out=, the folder of the checkpoint to continue from")
        step, history = load_trainer_state(model, optimizer, cfg, out)
    recent = []  # this stretch's losses, still on the device: read back in one go (no host sync per step)
    clock = None  # when the current stretch of training steps began

    def pause():  # the stretch's losses into history, and its time (the device's queue done first)
        synchronize(device)
        history["loss"] += torch.stack(recent).tolist() if recent else []
        recent.clear()
        history["train_seconds"] += time.perf_counter() - clock

    def evaluate_now(step):
        started = time.perf_counter()
        result = test_data.evaluate(model) if hasattr(test_data, "evaluate") else evaluate(model, *test_data)
        history["eval"].append({"step": step, "train_seconds": history["train_seconds"],
                                **{k: v for k, v in result.items() if k != "correct"}})
        history["eval_seconds"] += time.perf_counter() - started
        model.train()
        return result

    model.train()
    bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", mininterval=0.5)
    clock = time.perf_counter()
    while step < total_steps:
        epoch, skip = divmod(step, steps_per_epoch)
        for x, tokens, *own_targets in epoch_batches(epoch, skip):  # (B, C, H, W), (B, L), and maybe targets
            x, tokens = x.to(device), tokens.to(device)  # no-ops for MNIST, already there
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr_at(step, total_steps)
            logits = model(x, tokens[:, :-1])  # (B, L - 1, vocab)
            if own_targets:  # the stream's (B, L - 1), -100 where the loss must not count (a question's prompt)
                targets, ignore = own_targets[0].to(device), -100
            else:  # the next tokens, <pad> skipped
                targets, ignore = tokens[:, 1:], model.config.pad_id
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=ignore,
                                   label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            recent.append(loss.detach())
            bar.update(1)
            if callbacks or step % 50 == 0 or step == total_steps:  # the bar's loss: a host sync, now and then
                bar.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch + 1, refresh=False)
            for cb in callbacks:
                cb(step, loss.item())
            if callbacks:
                model.train()  # a callback may have evaluated, which switches to eval mode
            evaluating = test_data is not None and eval_every and step % eval_every == 0
            saving = out is not None and step % cfg.save_every == 0
            if (evaluating or saving) and step % steps_per_epoch:  # epochs end below, evaluated and saved there
                pause()
                if evaluating:
                    evaluate_now(step)
                if saving:
                    save_trainer_state(model, optimizer, cfg, step, history, out)
                clock = time.perf_counter()
        pause()
        if test_data is not None:
            result = evaluate_now(step)
            measure = "exact match" if hasattr(test_data, "evaluate") else "caption exact match"
            bar.write(f"epoch {epoch + 1}: test {measure} {result['exact_match']:.2%}")
        if out is not None:
            save_trainer_state(model, optimizer, cfg, step, history, out)
        clock = time.perf_counter()
    bar.close()
    model.eval()
    return history


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m crossmodal.train", description="Train the MNIST captioner. "
                                "Every field of TrainConfig and CaptionerConfig is a flag, e.g. --decoder.gated true.")
    p.add_argument("--out", default="runs/captioner", help="folder for the checkpoint (default: runs/captioner)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out, with its settings")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint already in --out")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps")
    p.add_argument("--eval-every", type=int, default=None, metavar="STEPS",
                   help="also evaluate every STEPS steps, not only after each epoch")
    p.add_argument("--init-from", default=None, metavar="FOLDER",
                   help="start from the weights of a saved checkpoint (a new run, fresh optimizer: fine-tuning or "
                        "training on); the model is that checkpoint's, so no model flags")
    p.add_argument("--warm-start", default=None, metavar="FOLDER",
                   help="a new model (the task's, with your model flags) that starts from a checkpoint's weights "
                        "wherever they fit, tokens matched by character: e.g. the question answerer from the reader")
    p.add_argument("--task", choices=TASKS, default="mnist",
                   help="mnist: caption single digits; numbers: read numbers of 1 to 4 digits, starting from "
                        "numbers.reader_config(); questions: answer questions about them (questions.py); "
                        "see tasks.py (default: mnist)")
    add_flags(p.add_argument_group("training (TrainConfig)"), TrainConfig())
    add_flags(p.add_argument_group("model (CaptionerConfig)"), default_model_config(), skip=NOT_FLAGS)
    args = p.parse_args(argv)
    try:  # every check before anything is written
        cfg, model_config = _settings(args)
        device = pick_device(args.device)
        data = load_mnist(train=True), load_mnist(train=False)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        sys.exit(f"error: {err}")

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(cfg.seed)
    model = new_model(args.task, model_config)
    if args.init_from:
        start = Captioner.from_pretrained(args.init_from)
        if start.tokenizer.get_vocab() != model.tokenizer.get_vocab():
            sys.exit(f"error: --init-from {args.init_from} writes other characters than --task {args.task} needs "
                     "(--warm-start reuses what fits)")
        model.load_state_dict(start.state_dict())
    if args.warm_start:
        reused = warm_start(model, Captioner.from_pretrained(args.warm_start))
        print(f"warm start from {args.warm_start}: {reused['copied']} tensors, {reused['tokens']} tokens and "
              f"{reused['positions']} positions copied; left as initialised: {', '.join(reused['skipped']) or 'none'}")
    model.to(device)  # initialised on the CPU: the same weights everywhere
    data = task_data(args.task, model, cfg, data)  # for numbers and questions: a stream, and a fixed test set
    print(f"captioner with {sum(p.numel() for p in model.parameters()):,} parameters on {describe(device)}; "
          f"checkpoint in {args.out}")
    history = train(model, cfg, *data, out=args.out, resume=args.resume, eval_every=args.eval_every)
    final = history["eval"][-1]
    record = {  # how this checkpoint was made, for the README and the tests
        "command": "python -m crossmodal.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "train_seconds": round(history["train_seconds"], 1), "eval_seconds": round(history["eval_seconds"], 1),
        "test_exact_match": final["exact_match"],
        **{k: v for k, v in final.items() if k not in ("step", "train_seconds", "exact_match")},  # per_digit; or cer...
        "threads": torch.get_num_threads(), "device": describe(device), "torch": torch.__version__,
        "platform": platform.processor() or platform.machine(),
        "evaluations": evaluation_curve(history),
    }
    for flag, folder in (("init_from", args.init_from), ("warm_start", args.warm_start)):
        if folder:  # the run this one started from, so the record tells the whole story
            earlier = Path(folder) / RECORD
            record[flag] = json.loads(earlier.read_text()) if earlier.is_file() else str(folder)
    if args.warm_start:
        record["warm_start_reused"] = reused
    tmp = Path(args.out) / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(Path(args.out) / RECORD)
    print(f"trained in {history['train_seconds']:.0f} s (+{history['eval_seconds']:.0f} s evaluating); "
          f"test caption exact match {final['exact_match']:.2%}")


def evaluation_curve(history):
    """Every evaluation of a run, short: step, training seconds so far, exact match (and the CER of a reader)."""
    return [{"step": e["step"], "train_seconds": round(e["train_seconds"], 1), "exact_match": e["exact_match"],
             **({"cer": e["cer"]} if "cer" in e else {})} for e in history["eval"]]


NOT_FLAGS = ("vision.image_size", "vision.in_chans",  # MNIST's: 28×28 grey
              "decoder.vocab_size", "bos_id", "eos_id", "pad_id")  # the tokenizer's


def _settings(args):
    """(TrainConfig, CaptionerConfig) from the flags, or from the run being resumed; --out checked first."""
    out = Path(args.out)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be 1 or more, got {args.threads}")
    if args.eval_every is not None and args.eval_every < 1:
        raise ValueError(f"--eval-every must be 1 or more, got {args.eval_every}")
    _check_out(out, args.resume, args.overwrite)
    if args.init_from and args.resume:
        raise ValueError("--init-from starts a new run from a checkpoint and --resume continues one: give one of them")
    if args.warm_start and (args.init_from or args.resume):
        raise ValueError("--warm-start starts a new model from a checkpoint's weights; --init-from and --resume take "
                         "the checkpoint's own model: give one of them")
    if args.warm_start and not (Path(args.warm_start) / "config.json").is_file():
        raise ValueError(f"--warm-start {args.warm_start} is not a saved model (no config.json in it)")
    values = {**given(args, TrainConfig()), **given(args, default_model_config())}
    if args.resume:
        cfg = TrainConfig(**read_json(out / TRAINER_STATE)["train_config"])
        model_config = CaptionerConfig.from_dict(read_json(out / "config.json"))
        saved = {**flatten(cfg), **flatten(model_config)}
        asked = {**flatten(apply(cfg, values)), **flatten(apply(model_config, values))}
        changed = [f"--{k.replace('_', '-')} {asked[k]} (it used {saved[k]})" for k in values if asked[k] != saved[k]]
        if changed:
            raise ValueError(f"--resume continues {out} with the settings it was started with, but the command "
                             f"asks for {', '.join(changed)}: drop those flags, or start a new run in another --out")
    elif args.init_from:
        model_flags = [k for k in values if k in flatten(default_model_config())]
        if model_flags:
            raise ValueError(f"--init-from takes the model of {args.init_from}: drop "
                             + ", ".join(f"--{k.replace('_', '-')}" for k in model_flags))
        model_config = CaptionerConfig.from_dict(read_json(Path(args.init_from) / "config.json"))
        cfg = apply(TrainConfig(), values)
    else:
        cfg, model_config = apply(TrainConfig(), values), apply(base_config(args.task), values)
    cfg.check()
    check_config(model_config)
    return cfg, model_config


def _check_out(out, resume, overwrite):
    """Refuse an --out that a run cannot use, or would destroy without being asked to."""
    if resume and overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: give a folder for the checkpoint")
    parent = next(p for p in out.absolute().parents if p.exists())  # checkpoints are swapped in there
    if not parent.is_dir():
        raise ValueError(f"--out {out} cannot be made: {parent} is a file, not a folder")
    for folder in [parent, out] if out.exists() else [parent]:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"--out {out} cannot be written ({folder} is not writable): choose another folder")
    if resume:
        recover(out)  # a save killed half way leaves the previous checkpoint whole
        if not (out / TRAINER_STATE).is_file():
            raise ValueError(f"--resume: {out} holds no run to continue (no {TRAINER_STATE}); "
                             "leave out --resume to start a new run")
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out} already holds files (a trained model?): choose a new folder, add --resume "
                         "to continue its training, or --overwrite to replace its checkpoint")
    if others := foreign_files(out):
        raise ValueError(f"--out {out} holds files that are not a checkpoint's ({', '.join(others[:3])}): "
                         "a run's folder holds its checkpoint only; choose another --out, or move them")


if __name__ == "__main__":
    main()
