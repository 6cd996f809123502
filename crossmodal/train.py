"""Train any task's model: one command line, one trainer (training/), every task (tasks/).

    python -m crossmodal.train                                  # the captioner: 5 epochs, ~10 minutes on 2 cores
    python -m crossmodal.train --task numbers --out runs/reader
    python -m crossmodal.train --task questions --warm-start crossmodal/checkpoints/number-reader --out runs/qa
    python -m crossmodal.train --task text --out runs/text-lm
    python -m crossmodal.train --task eyes --lm runs/text-lm --out runs/eyes
    python -m crossmodal.train --decoder.gated true --out runs/gated     # any config field is a flag
    python -m crossmodal.train --out runs/captioner --resume             # after an interruption
    torchrun --standalone --nproc_per_node 2 -m crossmodal.train --task numbers --out runs/ddp

Every field of TrainConfig, of the task's model config and of its options is a flag, with the task's defaults.
Everything is checked before anything is written: a folder that holds a run is never replaced without
--overwrite, --resume continues a run only with its own settings, and a bad flag gets one line, not a traceback.
"""

import os
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
from safetensors import SafetensorError

from .cli import Parser, one_line
from .devices import pick_device
from .folders import CONFIG, TRAINER_STATE, RunLock, check_out, read_json, readable_folder, recover
from .nn.auto import architecture, load_model, meta_model
from .nn.config import check_config
from .nn.encoders import check_built_in
from .nn.memory import check_fits, model_bytes, training_bytes
from .pretrained import shipped_dir
from .tasks import TASKS, get_task
from .training.distributed import Processes
from .training.flags import add_flags, apply, flatten, flatten_json, given
from .training.records import earlier_run, run_record, write_record
from .training.state import read_trainer_state
from .training.trainer import train
from .training.warm_start import warm_start

NOT_FLAGS = ("vision.image_size", "vision.in_chans",  # the task's images
             "decoder.vocab_size", "bos_id", "eos_id", "pad_id", "image_id")  # the tokenizer's


def parser_for(task):
    """The command line of `task`: the common flags, then TrainConfig's, the model config's and the task's own."""
    p = Parser(prog="python -m crossmodal.train", description=f"Train a model: {task.summary}. "
                                "Every field of TrainConfig, of the model config and of the task's options is a flag.")
    p.add_argument("--task", choices=list(TASKS), default="captions",
                   help="; ".join(f"{t.name}: {t.summary}" for t in TASKS.values()) + " (default: captions)")
    p.add_argument("--out", default=f"runs/{task.name}", help=f"folder for the checkpoint (default: runs/{task.name})")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out, with its settings")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint already in --out")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps")
    p.add_argument("--compile", action="store_true", help="compile the training step with torch.compile (worth it "
                   "on a GPU and for long runs; compiling takes a minute)")
    p.add_argument("--bf16", action="store_true", help="the forward pass in bfloat16 (torch.autocast): for GPUs and "
                   "CPUs that multiply bf16 natively; the weights stay float32")
    p.add_argument("--eval-every", type=int, default=None, metavar="STEPS",
                   help="also evaluate every STEPS steps, not only after each epoch")
    p.add_argument("--init-from", default=None, metavar="FOLDER",
                   help="start from the weights of a saved checkpoint (a new run, fresh optimizer: fine-tuning or "
                        "training on); the model is that checkpoint's, so no model flags")
    p.add_argument("--warm-start", default=None, metavar="FOLDER",
                   help="a new model (the task's, with your model flags) that starts from a checkpoint's weights "
                        "wherever they fit, tokens matched by character: e.g. the question answerer from the reader")
    add_flags(p.add_argument_group("training (TrainConfig)"), task.train_config)
    if task.model_config() is not None:
        add_flags(p.add_argument_group("model"), task.model_config(), skip=NOT_FLAGS)
    if task.options is not None:
        add_flags(p.add_argument_group(f"{task.name} task"), task.options())
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    peek = Parser(prog="python -m crossmodal.train", add_help=False)
    peek.add_argument("--task", choices=list(TASKS), default="captions")
    task = get_task(peek.parse_known_args(argv)[0].task)
    args = parser_for(task).parse_args(argv)
    first = os.environ.get("RANK", "0") == "0"  # torchrun's rank 0 is the one that writes (training/distributed.py)
    try:
        new_run = settings(task, args)  # every flag and --out checked before anything is touched (--resume: None)
        with RunLock(args.out) if first else nullcontext():  # then the lock: one run works in a folder at a time
            if args.resume and first:
                recover(args.out)  # only under the lock: a killed save's leftovers are then no running job's
            run(task, args, argv, *(new_run or settings(task, args, resuming=True)))
    except KeyboardInterrupt:
        sys.exit(f"error: stopped (Ctrl-C); {last_checkpoint(args.out)}")
    except (ValueError, FileNotFoundError, RuntimeError) as err:  # TrainingDiverged is a ValueError
        sys.exit(one_line(err))
    except (OSError, SafetensorError) as err:  # a full disk, a folder taken away: the last whole checkpoint stays
        sys.exit(f"error: could not write {args.out} ({err}); the last checkpoint saved there, if any, is whole")


def run(task, args, argv, cfg, model_config, options):
    """Build the model, train it into --out and write its record: the command's work, once every check has passed."""
    processes, device = Processes.start(pick_device(args.device))
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        say = print if processes.main else (lambda *a, **k: None)
        model, tokenizer, reused = build(task, args, model_config, options, cfg, say)
        model.to(device)  # initialised on the CPU: the same weights everywhere
        stream, test_set = task.data(model, tokenizer, cfg, options, device)
        say(f"{task.name}: {type(model).__name__} with {sum(p.numel() for p in model.parameters()):,} parameters "
            f"({sum(p.numel() for p in model.parameters() if p.requires_grad):,} learning) on {device}, "
            f"{processes.world} process(es); checkpoint in {args.out}")
        identity = {"task": task.name, "task_options": flatten(options) if options is not None else {}}
        history = train(model, cfg, stream, test_set, out=args.out, resume=args.resume, eval_every=args.eval_every,
                        loss=task.loss, tokenizer=tokenizer, run=identity, processes=processes,
                        callbacks=task.callbacks(model), compile=args.compile, bf16=args.bf16)
        if processes.main:
            record = run_record("python -m crossmodal.train " + " ".join(argv), history, device, processes.world)
            for flag, folder in (("init_from", args.init_from), ("warm_start", args.warm_start)):
                if folder:  # the run this one started from, so the record tells the whole story
                    record[flag] = earlier_run(Path(folder))
            if reused is not None:
                record["warm_start_reused"] = reused
            write_record(Path(args.out), record)
            final = history["eval"][-1] if history["eval"] else {}
            score = f"; test exact match {final['exact_match']:.2%}" if "exact_match" in final else ""
            say(f"trained in {history['train_seconds']:.0f} s (+{history['eval_seconds']:.0f} s evaluating){score}")
    finally:
        processes.stop()


def last_checkpoint(out):
    """Where a stopped run can go on from: the step of the whole checkpoint in `out`, said in a sentence."""
    try:
        step = read_json(readable_folder(out) / TRAINER_STATE).get("step")
    except ValueError:
        return f"no checkpoint was saved in {out} yet"
    return f"the checkpoint of step {step} in {out} is whole: continue with --resume --out {out}"


def settings(task, args, resuming=False):
    """(TrainConfig, model config, task options) from the flags, or from the run being resumed; --out checked first.

    With --resume it is called twice: first to check the flags and --out only (it returns None, having read
    nothing), then, under the run's lock and after `recover`, with resuming=True to read the run's settings.
    """
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise ValueError(f"--threads must be from 1 to 1024, got {args.threads}")
    if args.eval_every is not None and args.eval_every < 1:
        raise ValueError(f"--eval-every must be 1 or more, got {args.eval_every}")
    for flag, folder in (("--init-from", args.init_from), ("--warm-start", args.warm_start)):
        if folder is not None and not folder.strip():  # "" would silently mean "no folder": a new model
            raise ValueError(f"{flag} is empty: give the folder of a saved model, or leave {flag} out")
    if args.init_from and args.resume:
        raise ValueError("--init-from starts a new run from a checkpoint and --resume continues one: give one of them")
    if args.warm_start and (args.init_from or args.resume):
        raise ValueError("--warm-start starts a new model from a checkpoint's weights; --init-from and --resume take "
                         "the checkpoint's own model: give one of them")
    out = check_out(args.out, resume=args.resume, overwrite=args.overwrite)
    base_model = task.model_config()
    values = {**given(args, task.train_config), **(given(args, base_model) if base_model is not None else {})}
    option_values = given(args, task.options()) if task.options is not None else {}
    if values.get("vision.stem") == "patch" and "vision.stem_channels" not in values:
        values["vision.stem_channels"] = 0  # the full-resolution convolution belongs to the conv stem the task chose
    if values.get("steps") == 0:  # 0 is TrainConfig's "train by epochs", which is not what `--steps 0` asks for
        raise ValueError("--steps 0 trains nothing: give 1 or more, or leave --steps out to train for --epochs")
    model_flags = [k for k in values if base_model is not None and k in flatten(base_model)]
    model_flags += [k for k in option_values if k in task.model_options]
    if args.resume and not resuming:
        return None  # the run's own settings are read under its lock (main)
    if args.resume:
        state = read_json(out / TRAINER_STATE)
        if state.get("task", "captions") != task.name:
            raise ValueError(f"--resume: {args.out} is a run of --task {state.get('task')}, not {task.name}: give "
                             f"--task {state.get('task')}")
        state, cfg = read_trainer_state(out)  # every field checked: a damaged state is refused before any step
        options = _options(task, state.get("task_options", {}))
        saved = {**flatten(cfg), **flatten_json(read_json(out / CONFIG)), **(flatten(options) if options else {})}
        asked = {**flatten(apply(cfg, values)), **(flatten(apply(options, option_values)) if options else {}),
                 **{k: v for k, v in values.items() if k not in flatten(cfg)}}
        changed = [f"--{k.replace('_', '-')} {asked[k]} (it used {saved.get(k)})"
                   for k in [*values, *option_values] if asked.get(k) != saved.get(k)]
        if changed:
            raise ValueError(f"--resume continues {args.out} with the settings it was started with, but the command "
                             f"asks for {', '.join(changed)}: drop those flags, or start a new run in another --out")
        model_config = None
    else:
        cfg = apply(task.train_config, values)
        options = apply(task.options(), option_values) if task.options is not None else None
        model_config = apply(base_model, values) if base_model is not None else None
        for flag, folder in (("--init-from", args.init_from), ("--warm-start", args.warm_start)):
            if folder and architecture(folder) != task.architecture:
                raise ValueError(f"{flag} {folder} holds a {architecture(folder)}; --task {task.name} trains a "
                                 f"{task.architecture}")
        if args.init_from and model_flags:
            raise ValueError(f"--init-from takes the model of {args.init_from}: drop "
                             + ", ".join(f"--{k.replace('_', '-')}" for k in model_flags))
        if args.warm_start and task.architecture != "VisionLanguageModel":
            raise ValueError(f"--warm-start makes a vision-language model from another; for --task {task.name} use "
                             "--init-from")
    cfg.check()
    if options is not None:
        options.check()
    if model_config is not None and hasattr(model_config, "vision"):
        check_config(model_config)
        if model_config.vision.timm_model:
            check_built_in(model_config.vision.timm_model)  # an hf-hub: name would go to the network to be built
    elif model_config is not None:
        model_config.check()  # a text LM's sizes: the rules a loaded one is held to (nn.config.check_gpt2_config)
    check_memory(task, args, cfg, model_config, options)
    return cfg, model_config, options


def check_memory(task, args, cfg, model_config, options):
    """Refuse a model, or a first batch, that cannot fit the device's memory (nn/memory.py), before anything is built:
    the model is built on the meta device, which allocates nothing."""
    if getattr(options, "hub", False):
        return  # the hub's GPT-2: 124 M parameters, not ours to size
    start = (args.out if args.resume else args.init_from) or \
        ((options.lm or shipped_dir("text-lm")) if task.name == "eyes" else None)  # the eyes' size is its LM's
    if start and task.name == "eyes" and architecture(start) != "GPT2LMHeadModel":
        return  # not a language model: the task's builder says so, in its words
    if start:
        model = meta_model(start)
    else:
        with torch.device("meta"):
            model, _ = task.new_model(model_config, options)
    per_process = -(-cfg.batch_size // int(os.environ.get("WORLD_SIZE", "1")))  # torchrun shares the batch's rows
    needed = training_bytes(model, per_process) + (model_bytes(model) if cfg.ema else 0)  # the average: a copy
    check_fits(needed, f"training a model of {sum(p.numel() for p in model.parameters()):,} parameters with "
               f"--batch-size {cfg.batch_size}", pick_device(args.device))


def build(task, args, model_config, options, cfg, say=print):
    """(model, tokenizer, what --warm-start reused or None): the task's new model, or the checkpoint's."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every process
    if args.resume:
        model, tokenizer = load_model(args.out, expect=task.architecture)
        return model.train(), tokenizer, None
    model, tokenizer = task.new_model(model_config, options)
    if args.init_from:
        start, start_tokenizer = load_model(args.init_from, expect=task.architecture)
        if start_tokenizer is None or start_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise ValueError(f"--init-from {args.init_from} writes other characters than --task {task.name} needs "
                             "(--warm-start reuses what fits)")
        return start.train(), start_tokenizer, None
    reused = None
    if args.warm_start:
        reused = warm_start(model, load_model(args.warm_start, expect="VisionLanguageModel")[0])
        say(f"warm start from {args.warm_start}: {reused['copied']} tensors, {reused['tokens']} tokens and "
              f"{reused['positions']} positions copied; left as initialised: {', '.join(reused['skipped']) or 'none'}")
    return model, tokenizer, reused


def _options(task, saved):
    return apply(task.options(), saved) if task.options is not None else None


if __name__ == "__main__":
    main()
