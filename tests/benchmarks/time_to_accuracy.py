"""Time to accuracy, for every task: train with a recipe and print when the test metric first crosses fixed targets.

    python tests/benchmarks/time_to_accuracy.py                                   # the captioner's default recipe
    python tests/benchmarks/time_to_accuracy.py --task numbers --steps 1500       # the reader, 1,500 steps
    python tests/benchmarks/time_to_accuracy.py --task questions --warm-start runs/reader --test-size 1400
    python tests/benchmarks/time_to_accuracy.py --lr 3e-3 --ema 0 --seed 1 --json runs/tta.json

It takes every flag `python -m crossmodal.train` takes for the task (the same settings, the same model, the same
trainer), and evaluates the task's test set every --eval-every steps. The clock counts training steps only: the
evaluations are left out, so evaluating more often finds a crossing sooner without adding to it. Targets (exact
match): captions 97/98/99/99.3%, numbers and questions 90/95/97%. It also prints the CPU, the work of a step (its
forward and backward operations, counted by PyTorch's FlopCounterMode on a real batch) and the rate it ran at,
against the CPU's nominal fp32 peak. Compare recipes on one machine, in step counts or seconds of one run; where
two recipes are within noise, two seeds decide.
"""

import argparse
import json
import platform
import sys
from dataclasses import asdict

import torch
from torch.utils.flop_counter import FlopCounterMode

from crossmodal.devices import describe, pick_device
from crossmodal.tasks import get_task
from crossmodal.train import build, parser_for, settings
from crossmodal.training import train

TARGETS = {"captions": (0.97, 0.98, 0.99, 0.993), "numbers": (0.90, 0.95, 0.97), "questions": (0.90, 0.95, 0.97)}


def step_flops(model, stream, cfg, loss):
    """Floating-point operations of one training step's forward and backward pass on the stream's first batch."""
    batch = next(iter(stream.batches(0, cfg.batch_size, cfg.seed))).to(model.device)
    with FlopCounterMode(display=False) as counter:
        total, count = loss(model, batch, cfg)
        (total / count).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def cpu_name():
    """The processor's model name, as /proc/cpuinfo gives it (platform's answer elsewhere)."""
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def cpu_peak_gflops(threads):
    """Nominal fp32 peak of the threads used: threads × clock × fp32 operations per cycle per core. An estimate:
    32 per cycle for two 256-bit FMA pipes (AVX2; AMD Zen 4 runs AVX-512 on the same pipes), 64 for an Intel core
    with two 512-bit FMA units; turbo clocks differ. Returns (GFLOP/s, flops per cycle) or None when unknown."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    if not mhz:
        return None
    wide = torch.backends.cpu.get_cpu_capability() == "AVX512" and "GenuineIntel" in info
    per_cycle = 64 if wide else 32
    return threads * max(mhz) / 1000 * per_cycle, per_cycle


def smaller_test_set(test_set, size):
    """The first `size` items of a task's test set, spread over it where it is sorted by kind (questions)."""
    kind = type(test_set).__name__
    if kind == "CaptionTest":
        return type(test_set)(test_set.images[:size], test_set.labels[:size])
    if kind == "ReadingTest":
        return type(test_set)(test_set.numbers[:size])
    if kind == "QuestionTest":
        every = max(1, len(test_set.questions) // size)
        picked = list(range(0, len(test_set.questions), every))[:size]
        return type(test_set)((test_set.numbers[picked], [test_set.questions[i] for i in picked]))
    raise ValueError(f"--test-size: no smaller test set for {kind}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--task", default="captions", choices=list(TARGETS))
    task = get_task(peek.parse_known_args(argv)[0].task)
    p = parser_for(task)
    p.prog, p.description = "tests/benchmarks/time_to_accuracy.py", __doc__.splitlines()[0]
    bench = p.add_argument_group("benchmark")
    bench.add_argument("--test-size", type=int, default=None, help="evaluate on this many test items (default: all)")
    bench.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    args.out, args.resume, args.overwrite = "runs/.time-to-accuracy", False, True  # nothing is written
    cfg, model_config, options = settings(task, args)
    eval_every = args.eval_every or max(1, 15_000 // cfg.batch_size)  # about every 15,000 images by default
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer, _ = build(task, args, model_config, options, cfg)
    model.to(device)
    stream, test_set = task.data(model, tokenizer, cfg, options, device)
    if args.test_size:
        test_set = smaller_test_set(test_set, args.test_size)
    flops = step_flops(model, stream, cfg, task.loss)
    history = train(model, cfg, stream, test_set, eval_every=eval_every, loss=task.loss, tokenizer=tokenizer,
                    callbacks=task.callbacks(model), compile=args.compile, bf16=args.bf16)

    steps = len(history["loss"])
    seconds_per_step = history["train_seconds"] / steps
    crossings = {t: next((e for e in history["eval"] if e["exact_match"] >= t), None) for t in TARGETS[task.name]}
    recipe = " ".join(argv) or "the default"
    print(f"\n{task.name}: {recipe}")
    print(f"{describe(device)}; {cpu_name()}; torch {torch.__version__}; test items: {args.test_size or 'all'}")
    for t, e in crossings.items():
        print(f"  {t:.1%}: " + (f"step {e['step']:5d}, {e['step'] * cfg.batch_size:8,d} images, "
                                f"{e['train_seconds']:7.1f} s" if e else "not reached"))
    final = history["eval"][-1]
    print(f"  final: {final['exact_match']:.2%} after {steps} steps, {history['train_seconds']:.1f} s of training "
          f"({1000 * seconds_per_step:.1f} ms/step)")
    achieved = flops / seconds_per_step / 1e9
    line = f"  a step: {flops / 1e9:.2f} GFLOP forward + backward, {achieved:.1f} GFLOP/s"
    peak = cpu_peak_gflops(torch.get_num_threads()) if device.type == "cpu" else None
    if peak:
        line += f", {achieved / peak[0]:.0%} of the nominal fp32 peak ({peak[0]:.0f} GFLOP/s at {peak[1]} per cycle)"
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": task.name, "argv": argv, "device": describe(device), "cpu": cpu_name(),
                       "train_config": asdict(cfg), "test_items": args.test_size or "all",
                       "crossings": {str(t): e and {k: e[k] for k in ("step", "train_seconds")}
                                     for t, e in crossings.items()},
                       "final": final["exact_match"], "steps": steps, "train_seconds": history["train_seconds"],
                       "gflop_per_step": flops / 1e9, "evaluations": history["eval"]}, f, indent=1)


if __name__ == "__main__":
    main()
