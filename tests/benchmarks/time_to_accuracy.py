"""Time to accuracy: train with a recipe and print when the test caption exact match first reaches 97/98/99%.

    python tests/benchmarks/time_to_accuracy.py                       # the default recipe (python -m crossmodal.train)
    python tests/benchmarks/time_to_accuracy.py --epochs 3 --lr 3e-3  # any train flag
    python tests/benchmarks/time_to_accuracy.py --device cuda         # on a GPU

The clock counts training only: the evaluations (every --eval-every steps and after each epoch) are
left out, so evaluating more often finds the crossing sooner without adding to it. It also prints the
throughput of a training step in GFLOP/s (operations counted by PyTorch's FlopCounterMode) against
this CPU's nominal fp32 peak. Compare numbers from one machine; `describe` says which one.
"""

import argparse
import json
import os

import torch
from torch.utils.flop_counter import FlopCounterMode

from crossmodal.data import load_mnist
from crossmodal.devices import describe, pick_device
from crossmodal.tasks.captions import CaptionBatches, CaptionTest, caption_tokens, captioner_config, new_captioner
from crossmodal.train import NOT_FLAGS
from crossmodal.training import TrainConfig, next_token_batch, train
from crossmodal.training.flags import add_flags, apply, given

TARGETS = (0.97, 0.98, 0.99)


def step_flops(model, batch_size):
    """Floating-point operations of one training step's forward and backward pass (the optimizer's few left out)."""
    x = torch.rand(batch_size, 1, 28, 28, device=model.device)
    tokens = caption_tokens(model.tokenizer).to(model.device)[torch.arange(batch_size) % 10]  # (B, L)
    batch = next_token_batch(x, tokens, model.config.pad_id)
    with FlopCounterMode(display=False) as counter:
        _, loss = model(batch.images, batch.tokens, batch.targets)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def cpu_peak_gflops():
    """Nominal fp32 peak of this CPU: cores × clock × 32 flops per cycle (two 256-bit FMA pipes, as on AMD Zen;
    Zen 4 runs AVX-512 on the same pipes). An estimate: turbo clocks and other designs differ."""
    mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
    return torch.get_num_threads() * (max(mhz) if mhz else 0.0) / 1000 * 32


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=117, help="steps between evaluations (default: a quarter epoch)")
    p.add_argument("--json", help="also write the results to this file")
    add_flags(p.add_argument_group("training"), TrainConfig())
    add_flags(p.add_argument_group("model"), captioner_config(), skip=NOT_FLAGS)  # the train CLI's flags
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    values = {**given(args, TrainConfig()), **given(args, captioner_config())}
    cfg, model_config = apply(TrainConfig(), values), apply(captioner_config(), values)
    cfg.check()
    torch.manual_seed(cfg.seed)  # the initial weights, as python -m crossmodal.train does
    model = new_captioner(model_config).to(device)
    flops = step_flops(model, cfg.batch_size)
    images, labels = load_mnist(train=True)
    stream = CaptionBatches(images, labels, model.tokenizer, cfg.augment, cfg.augment and cfg.augment_strokes, device)
    history = train(model, cfg, stream, CaptionTest(*load_mnist(train=False)), eval_every=args.eval_every)

    steps = len(history["loss"])
    seconds_per_step = history["train_seconds"] / steps
    crossings = {t: next(((e["step"], e["train_seconds"]) for e in history["eval"] if e["exact_match"] >= t), None)
                 for t in TARGETS}
    print(f"\n{describe(device)}, torch {torch.__version__}; recipe: {json.dumps(values) if values else 'default'}")
    for t, hit in crossings.items():
        print(f"  {t:.0%}: " + (f"step {hit[0]:5d}, {hit[1]:7.1f} s" if hit else "not reached"))
    final = history["eval"][-1]["exact_match"]
    print(f"  final: {final:.2%} after {steps} steps, {history['train_seconds']:.1f} s of training "
          f"({1000 * seconds_per_step:.1f} ms/step)")
    achieved = flops / seconds_per_step / 1e9
    line = f"  a step: {flops / 1e9:.2f} GFLOP forward + backward, {achieved:.1f} GFLOP/s achieved"
    if device.type == "cpu" and cpu_peak_gflops():
        peak = cpu_peak_gflops()
        line += f", {achieved / peak:.0%} of this CPU's nominal fp32 peak ({peak:.0f} GFLOP/s)"
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": describe(device), "recipe": values,
                       "crossings": {str(t): v for t, v in crossings.items()},
                       "final": final, "steps": steps, "train_seconds": history["train_seconds"],
                       "gflop_per_step": flops / 1e9, "evals": history["eval"],
                       "cpu_capability": torch.backends.cpu.get_cpu_capability(), "pid": os.getpid()}, f, indent=1)


if __name__ == "__main__":
    main()
