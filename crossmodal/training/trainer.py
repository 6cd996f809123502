"""The one training loop, for every task (minGPT's trainer: the loop knows no model and no data set).

    history = train(model, TrainConfig(epochs=2), stream, test_set)

Each step: the stream's next Batch (streams.py), the learning rate of the schedule (warm-up, then cosine), the
task's loss (loss.py: a sum over counted positions and their count), backward, gradient clipping, AdamW, and,
with cfg.ema, the moving average of the weights (averaging.py), which is then what is evaluated, saved and handed
back. The test set is evaluated after every epoch (and every `eval_every` steps), a checkpoint saved every
cfg.save_every steps and after each evaluation (state.py), and `resume` continues from one step for step. Under
torchrun the same loop runs data-parallel (distributed.py). A loss that is not finite stops the run with
one sentence, and the last checkpoint written is kept.
"""

import time

import torch
from tqdm.auto import tqdm

from ..devices import synchronize
from .averaging import WeightAverage
from .config import param_groups
from .distributed import Processes
from .loss import vision_language_loss
from .state import load_state, save_state


class TrainingDiverged(ValueError):
    """The loss or the weights stopped being finite numbers: training cannot go on from here."""


def train(model, cfg, stream, test_set=None, out=None, resume=False, callbacks=(), eval_every=None, loss=None,
          tokenizer=None, run=None, processes=None, compile=False, bf16=False):
    """Train `model` in place, on its device; returns the history {"loss": [...], "eval": [...], seconds}.

    stream, test_set: the task's (streams.py). loss(model, batch, cfg) -> (sum, count): default, a
    VisionLanguageModel's next-token loss. Each callback is called as cb(step, loss) after every step; a dict it
    returns is logged with the step in history["logged"].
    out: the folder to checkpoint into (with the model's `tokenizer`, default model.tokenizer); resume=True
    continues the run saved there, refusing one made with other settings (`run`: e.g. the task's name and
    options, also checked). processes: distributed.Processes under torchrun (default: this process alone).
    compile: run the training steps through torch.compile (the same numbers up to round-off, faster once compiled;
    docs/results.md says when it pays). bf16: the forward pass under torch.autocast to bfloat16, where the device
    multiplies it natively (an approximation: the weights and the optimizer stay float32).
    """
    cfg.check()
    processes = processes or Processes()
    loss = loss or vision_language_loss
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    device = next(model.parameters()).device
    steps_per_epoch = stream.steps_per_epoch(cfg.batch_size)
    total_steps = cfg.total_steps(steps_per_epoch)
    # one kernel for the whole update on a GPU; on a CPU, one call per kind of operation over all the tensors
    implementation = {"fused": True} if device.type == "cuda" else {"foreach": True}
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                                  **implementation)
    average = WeightAverage(model, cfg.ema) if cfg.ema else None
    evaluated = average.model if average is not None else model  # what the test set scores and a user loads
    history = {"loss": [], "eval": [], "train_seconds": 0.0, "eval_seconds": 0.0}
    step = 0
    if resume:
        if out is None:
            raise ValueError("resume=True needs out=, the folder of the checkpoint to continue from")
        step, history = load_state(out, model, optimizer, cfg, run, average)
    trained = processes.wrap(model)  # DDP under torchrun: gradients averaged over the processes
    forward = torch.compile(trained) if compile else trained  # compiled once, at the edge of the loop
    recent = []  # this stretch's losses, still on the device: read back in one go (no host sync per step)
    clock = None  # when the current stretch of training steps began
    last_saved = step if resume else None

    def pause():  # the stretch's losses into history, and its time (the device's queue done first)
        synchronize(device)
        values = torch.stack(recent).tolist() if recent else []
        recent.clear()
        bad = next((i for i, v in enumerate(values) if v != v or abs(v) == float("inf")), None)
        if bad is not None:
            diverged(len(history["loss"]) + bad + 1, cfg, out, last_saved)
        history["loss"] += values
        history["train_seconds"] += time.perf_counter() - clock

    def evaluate_now(step):
        if processes.main:
            started = time.perf_counter()
            result = test_set.evaluate(evaluated)
            history["eval"].append({"step": step, "train_seconds": history["train_seconds"], **result})
            history["eval_seconds"] += time.perf_counter() - started
        processes.barrier()
        model.train()

    def save_now(step):
        nonlocal last_saved
        if not all(p.isfinite().all() for p in model.parameters()):
            diverged(step, cfg, out, last_saved)
        if processes.main:
            save_state(out, model, tokenizer, optimizer, cfg, step, history, run, average)
        processes.barrier()
        last_saved = step

    model.train()
    bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", mininterval=0.5,
               disable=not processes.main)
    clock = time.perf_counter()
    while step < total_steps:
        epoch, skip = divmod(step, steps_per_epoch)
        for batch in stream.batches(epoch, cfg.batch_size, cfg.seed, skip):
            batch = processes.shard(batch).to(device)  # this process's rows of the global batch
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr_at(step, total_steps)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                total, count = loss(forward, batch, cfg)
            counted = processes.sum(torch.stack([total.detach(), count.to(total.dtype)]))  # over every process
            optimizer.zero_grad(set_to_none=True)
            (total * processes.world / counted[1].clamp(min=1)).backward()  # DDP averages: the global mean's grad
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if average is not None:
                average.update(model, step)
            step += 1
            step_loss = counted[0] / counted[1].clamp(min=1)
            recent.append(step_loss)
            bar.update(1)
            if callbacks or step % 50 == 0 or step == total_steps:  # the bar's loss: a host sync, now and then
                bar.set_postfix(loss=f"{step_loss.item():.4f}", epoch=epoch + 1, refresh=False)
            for cb in callbacks:
                logged = cb(step, step_loss.item())
                if isinstance(logged, dict):
                    history.setdefault("logged", []).append({"step": step, **logged})
            if callbacks:
                model.train()  # a callback may have evaluated, which switches to eval mode
            end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
            evaluating = test_set is not None and eval_every and step % eval_every == 0
            saving = out is not None and step % cfg.save_every == 0
            if (evaluating or saving) and not end_of_epoch:  # epochs end below, evaluated and saved there
                pause()
                if evaluating:
                    evaluate_now(step)
                if saving:
                    save_now(step)
                clock = time.perf_counter()
            if step == total_steps:
                break
        pause()
        if test_set is not None:
            evaluate_now(step)
            if processes.main and "exact_match" in history["eval"][-1]:
                bar.write(f"epoch {epoch + 1}: test exact match {history['eval'][-1]['exact_match']:.2%}")
        if out is not None:
            save_now(step)
        clock = time.perf_counter()
    bar.close()
    if average is not None:
        average.copy_to(model)  # the caller's model ends as what was evaluated and saved
    model.eval()
    return history


def diverged(step, cfg, out, last_saved):
    kept = f"; the checkpoint of step {last_saved} in {out} is kept" if out is not None and last_saved else ""
    raise TrainingDiverged(f"training diverged at step {step}: the loss or the weights are no longer finite numbers "
                           f"(lr {cfg.lr:g}){kept}. Lower --lr, check the data and the starting weights, and start "
                           "again")

