"""What each speed lever does to a training step, on this CPU: one run, every lever timed against the same baseline.

    python tests/benchmarks/step_levers.py                        # the captioner's step
    python tests/benchmarks/step_levers.py --task numbers         # the reader's (its data side too)
    python tests/benchmarks/step_levers.py --lower-kernels        # also with PyTorch's lower CPU kernels (AVX2 on an
                                                                  # AVX-512 CPU), in a second process

Levers: AdamW's implementation (a loop over tensors, foreach, fused), the attention (PyTorch's fused SDPA or the
written-out softmax), torch.compile of the model, bf16 autocast (where the CPU has native bf16), channels-last
memory for the convolutional stem, one thread against two; and the data side: how long the task's stream takes
to make a batch, as a share of a step, and a step with the next batch made in a thread beside it.
Each row is the median of --steps timed steps after a warm-up; compare rows of one run only.
"""

import argparse
import contextlib
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

import torch

from crossmodal.nn.attention import set_fused_attention
from crossmodal.tasks import get_task
from crossmodal.training import param_groups

LOWER = {"AVX512": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
         "AVX2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}}


def bf16_native():
    """True where the CPU multiplies bf16 natively (AVX512-BF16 or AMX), so autocast can pay off."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def time_steps(task, cfg, batches, steps, optimizer="for-loop", fused_attention=True, compiled=False, bf16=False,
               channels_last=False, threads=None):
    """Median seconds of a training step (forward, loss, backward, clipping, AdamW) with the given levers."""
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, _ = task.new_model(task.model_config(), task.options() if task.options else None)
    set_fused_attention(model, fused_attention)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    kind = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[optimizer]
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=1e-4, **kind)
    forward = torch.compile(model) if compiled else model
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    model.train()
    times = []
    for i in range(steps + 5):  # the first five warm up (and compile)
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        with autocast():
            total, count = task.loss(forward, batch, cfg)
        opt.zero_grad(set_to_none=True)
        (total / count).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        times.append(time.perf_counter() - start)
    torch.set_num_threads(threads_before)
    return statistics.median(times[5:])


def time_data(stream, cfg, steps, step=None, beside=False):
    """Median seconds between batches: making one alone, or (step: a function of a batch) a training step with its
    batch, made before it or (beside) in a thread while the step before runs."""
    times, start = [], time.perf_counter()
    source = stream.batches(0, cfg.batch_size, cfg.seed)
    for i, batch in enumerate(made_beside(source) if beside else source):
        if step:
            step(batch)
        now = time.perf_counter()
        times.append(now - start)
        start = now
        if i == steps:
            break
    return statistics.median(times[1:])


def made_beside(batches):
    """The batches of an iterator, each made in a thread while the one before is used (one ahead)."""
    made = queue.Queue(maxsize=1)
    worker = threading.Thread(target=lambda: [made.put(b) for b in batches] + [made.put(None)], daemon=True)
    worker.start()
    while (batch := made.get()) is not None:
        yield batch


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="captions", choices=["captions", "numbers", "questions"])
    p.add_argument("--steps", type=int, default=30, help="timed steps per lever (default 30)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-compile", action="store_true", help="leave out torch.compile (it compiles for a minute)")
    p.add_argument("--lower-kernels", action="store_true", help="then run again with PyTorch's lower CPU kernels")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    cfg = task.train_config
    model, tokenizer = task.new_model(task.model_config(), task.options() if task.options else None)
    stream, _ = task.data(model, tokenizer, cfg, task.options() if task.options else None, "cpu")
    batches = [b for _, b in zip(range(8), stream.batches(0, cfg.batch_size, cfg.seed))]
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"{args.task}: batch {cfg.batch_size}, {args.threads} threads, {capability}, torch {torch.__version__}")

    base = time_steps(task, cfg, batches, args.steps)
    rows = [("baseline: AdamW for-loop, fused attention, fp32", base)]
    levers = {"AdamW foreach": {"optimizer": "foreach"}, "AdamW fused": {"optimizer": "fused"},
              "written-out attention": {"fused_attention": False}, "channels-last": {"channels_last": True},
              "1 thread": {"threads": 1}, "AdamW foreach + channels-last": {"optimizer": "foreach",
                                                                             "channels_last": True}}
    if not args.no_compile:
        levers["torch.compile (+ AdamW foreach)"] = {"compiled": True, "optimizer": "foreach"}
    if bf16_native():
        levers["bf16 autocast"] = {"bf16": True}
    for name, lever in levers.items():
        rows.append((name, time_steps(task, cfg, batches, args.steps, **lever)))
    data = time_data(stream, cfg, args.steps)
    rows.append((f"making a batch alone ({data / base:.0%} of a step)", data))
    model.train()
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=1e-4, foreach=True)

    def step(batch):
        total, count = task.loss(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        (total / count).backward()
        opt.step()

    rows.append(("a step with its batch made before it", time_data(stream, cfg, args.steps, step)))
    rows.append(("a step with the next batch made beside it", time_data(stream, cfg, args.steps, step, True)))
    print(f"{'lever':48}{'ms/step':>9}{'vs baseline':>13}")
    for name, seconds in rows:
        print(f"{name:48}{1000 * seconds:9.1f}{base / seconds:12.2f}×")
    if args.lower_kernels and capability in LOWER:
        env = {**os.environ, **LOWER[capability]}
        argv = [a for a in sys.argv[1:] if a != "--lower-kernels"]
        print(f"\nwith {' '.join(f'{k}={v}' for k, v in LOWER[capability].items())}:", flush=True)
        subprocess.run([sys.executable, __file__, *argv], env=env, check=True)


if __name__ == "__main__":
    main()
