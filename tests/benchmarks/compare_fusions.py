"""Three ways to let text see, measured side by side: cross-attention, LLaVA's prefix, Fuyu's raw patches.

    python tests/benchmarks/compare_fusions.py                        # 2 epochs each on MNIST captions, then the sweep
    python tests/benchmarks/compare_fusions.py --epochs 5 --device cuda
    python tests/benchmarks/compare_fusions.py --sweep-only           # only the cost against the number of patches
    python tests/benchmarks/compare_fusions.py --save runs/fusions    # also keep the trained models, each with its
                                                                      # row as training.json; and all in one JSON

Every variant is built by nn.fusion.comparable_configs (parameter counts within 10% of each other) and
trained with the same recipe (TrainConfig's defaults, as `python -m crossmodal.train`, unless flags
say otherwise), the same seed, data order and augmentation. For each: caption exact match on MNIST's
10,000 test images after the first and the last epoch, training steps per second (evaluation time
left out), one caption's latency (caption(), greedy with the KV cache, median of 20), the decoder's
sequence length and the FLOPs of writing one caption (PyTorch's FlopCounterMode), the KV cache and
the activations one training batch keeps for the backward pass (bytes of the saved tensors), and
how much of the digit word's attention falls on patches with ink (beside chance, the ink patches'
share). Then the sweep: random-initialised models of each design on square images of 28 to 112
pixels (49 to 784 patches of 4 × 4): a training step's time (a batch of 32) and one caption's
forward FLOPs.
Compare numbers from one machine only; the first line says which.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from crossmodal.data import load_mnist
from crossmodal.devices import describe, pick_device, synchronize
from crossmodal.nn.config import FUSIONS
from crossmodal.nn.decoder import KVCache
from crossmodal.nn.fusion import comparable_configs
from crossmodal.tasks.captions import CaptionBatches, CaptionTest, caption_tokens, captioner_config, new_captioner
from crossmodal.training import TrainConfig, next_token_batch, train
from crossmodal.training.flags import add_flags, apply, given

SWEEP_SIZES = (28, 56, 84, 112)  # square images; patches of 4 × 4: 49, 196, 441, 784 of them
SWEEP_BATCH = 32  # captions per training step in the sweep (smaller than training's: 784 patches are heavy)


def parameters(model):
    return sum(p.numel() for p in model.parameters())


def saved_activation_bytes(model, images, tokens):
    """Bytes of the tensors one forward pass keeps for its backward pass (what a training batch holds in memory)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    batch = next_token_batch(images, tokens, model.config.pad_id)  # what a training step reads, and its targets
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, loss = model(batch.images, batch.tokens, batch.targets)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return total


def kv_cache_bytes(model, image, tokens):
    """Bytes of the KV cache after reading one caption (tokens (1, T)): self-attention's, and cross-attention's."""
    cache = KVCache(model.config.decoder.depth)
    with torch.inference_mode():
        model.decoder(tokens, model.encode_images(image), cache)
    kvs = [kv for kv in cache.self_kv + cache.cross_kv if kv is not None]
    return sum(t.numel() * t.element_size() for kv in kvs for t in kv)


def caption_flops(model, image):
    """FLOPs of writing one caption: the encoder once, then the decoder one token at a time with the cache."""
    with FlopCounterMode(display=False) as counter:
        generated = model.generate(image)
    return counter.get_total_flops(), int((generated != model.config.pad_id).sum())


def caption_latency(model, image, repeats=20):
    for _ in range(3):
        model.caption(image)
    times = []
    for _ in range(repeats):
        synchronize(model.device)
        start = time.perf_counter()
        model.caption(image)
        synchronize(model.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ink_share(model, images, batch_size=500):
    """How much of the digit word's attention (mean over layers and heads) falls on patches with ink, and chance.

    Only the characters after "This is the number " and before the final "." count: the shared words need no
    image, and where their attention goes says nothing about seeing.
    """
    shares, chances = [], []
    start = len("This is the number ")
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(model.device)
        generated, maps = model.generate(x, return_attention=True)  # maps (B, T, L, H, N)
        p = model.config.vision.patch_size
        ink = F.max_pool2d(x, p).flatten(1) > 0.1  # (B, N): patches with a stroke
        per_char = (maps.mean(dim=(2, 3)) * ink[:, None]).sum(-1)  # (B, T): attention on ink
        length = (generated != model.config.pad_id).sum(1, keepdim=True)  # (B, 1): <eos> included
        t = torch.arange(generated.size(1), device=x.device)
        word = (t >= start) & (t < length - 2)  # (B, T): the digit word, without "." and <eos>
        shares.append(per_char[word])
        chances.append(ink.float().mean(-1))
    return torch.cat(shares).mean().item(), torch.cat(chances).mean().item()


def compare(cfg, device, base, epochs_note, save=None, fusions=FUSIONS):
    """Train and measure each design; with `save`, write each trained model to save/<fusion> as soon as it is done."""
    train_data, test_data = load_mnist(train=True), load_mnist(train=False)
    image = test_data[0][:1].to(device)
    augment = {"augment": cfg.augment, "strokes": cfg.augment and cfg.augment_strokes, "device": device}
    rows = {}
    for name, config in comparable_configs(base).items():
        if name not in fusions:
            continue
        torch.manual_seed(cfg.seed)  # the same initial draw for every design, as the train CLI does
        model = new_captioner(config).to(device)
        tokens = caption_tokens(model.tokenizer).to(device)[torch.arange(cfg.batch_size) % 10]  # (B, L)
        x = torch.rand(cfg.batch_size, 1, 28, 28, device=device)
        activations = saved_activation_bytes(model, x, tokens)
        print(f"{name}: {parameters(model):,} parameters, training {epochs_note} ...", flush=True)
        history = train(model, cfg, CaptionBatches(*train_data, model.tokenizer, **augment), CaptionTest(*test_data))
        flops, written = caption_flops(model, image)
        seven = caption_tokens(model.tokenizer)[7]  # "This is the number seven.": <bos> ... <eos>, maybe <pad>
        text_tokens = seven[seven != model.config.pad_id][None, :-1]  # (1, T): <bos> and the text
        share, chance = ink_share(model, test_data[0][:1000])
        rows[name] = {
            "parameters": parameters(model),
            "exact_match_first_epoch": history["eval"][0]["exact_match"],
            "exact_match_last_epoch": history["eval"][-1]["exact_match"],
            "steps_per_second": len(history["loss"]) / history["train_seconds"],
            "caption_latency_ms": 1000 * caption_latency(model, image),
            "decoder_positions": model.decoder.image_tokens + written + 1,  # image tokens, <bos>, what it wrote
            "caption_mflops": flops / 1e6,
            "kv_cache_kib": kv_cache_bytes(model, image, text_tokens.to(device)) / 1024,
            "saved_activations_mib": activations / 2**20,
            "attention_on_ink": share,
            "ink_chance": chance,
            "train_seconds": history["train_seconds"],
            "evaluations": [{"step": e["step"], "exact_match": e["exact_match"]} for e in history["eval"]],
        }
        print(json.dumps({name: rows[name]}), flush=True)  # kept in the log even if a later design fails
        if save:  # the model, and its row as the checkpoint's training.json (how it was made, what it measured)
            model.save_pretrained(Path(save) / name)
            record = {"command": "python tests/benchmarks/compare_fusions.py " + " ".join(sys.argv[1:]),
                      "fusion": name, "device": describe(device), "torch": torch.__version__, "epochs": cfg.epochs,
                      **rows[name]}
            (Path(save) / name / "training.json").write_text(json.dumps(record, indent=1))
    return rows


def sweep(device, base, repeats=5):
    """A training step's time and one caption's forward FLOPs against the number of patches, for each design."""
    rows = []
    for size in SWEEP_SIZES:
        for name, config in comparable_configs(base).items():
            config.vision.image_size = size
            torch.manual_seed(0)
            model = new_captioner(config).to(device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            tokens = caption_tokens(model.tokenizer).to(device)[torch.arange(SWEEP_BATCH) % 10]
            x = torch.rand(SWEEP_BATCH, 1, size, size, device=device)
            batch = next_token_batch(x, tokens, model.config.pad_id)
            times = []
            for _ in range(repeats + 2):  # two warm-up steps
                synchronize(device)
                start = time.perf_counter()
                _, loss = model(batch.images, batch.tokens, batch.targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                synchronize(device)
                times.append(time.perf_counter() - start)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(x[:1], tokens[:1, :-1])
            rows.append({"image": size, "patches": model.encoder.grid_size[0] * model.encoder.grid_size[1],
                         "fusion": name, "step_ms": 1000 * statistics.median(times[2:]),
                         "forward_mflops": counter.get_total_flops() / 1e6})
            print(f"  {size:3d} px, {rows[-1]['patches']:3d} patches, {name:6s}: step {rows[-1]['step_ms']:7.1f} ms, "
                  f"one caption's forward {rows[-1]['forward_mflops']:8.1f} MFLOP", flush=True)
    return rows


def print_table(rows):
    columns = [("parameters", "parameters", "{:,}"), ("exact_match_first_epoch", "exact match, epoch 1", "{:.2%}"),
               ("exact_match_last_epoch", "exact match, last epoch", "{:.2%}"),
               ("steps_per_second", "training steps/s", "{:.2f}"), ("caption_latency_ms", "one caption (ms)", "{:.1f}"),
               ("decoder_positions", "decoder positions", "{}"), ("caption_mflops", "MFLOP per caption", "{:.1f}"),
               ("kv_cache_kib", "KV cache (KiB)", "{:.0f}"), ("saved_activations_mib", "activations/batch (MiB)",
                                                                "{:.0f}"),
               ("attention_on_ink", "attention on ink", "{:.1%}"), ("ink_chance", "chance (ink patches)", "{:.1%}")]
    print("| | " + " | ".join(rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for key, label, fmt in columns:
        print(f"| {label} | " + " | ".join(fmt.format(r[key]) for r in rows.values()) + " |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--sweep-only", action="store_true", help="skip the training; only the cost against patches")
    p.add_argument("--no-sweep", action="store_true", help="skip the cost against patches; only the training")
    p.add_argument("--fusions", default=",".join(FUSIONS), help="which designs to train, e.g. raw (default: all three)")
    p.add_argument("--save", help="folder for the trained models (one per fusion) and compare_fusions.json")
    add_flags(p.add_argument_group("training"), TrainConfig(epochs=2))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    values = given(args, TrainConfig(epochs=2))
    cfg = apply(TrainConfig(epochs=2), values)
    base = captioner_config()
    print(f"{describe(device)}, torch {torch.__version__}; recipe: {json.dumps(values) if values else 'default'}, "
          f"{cfg.epochs} epochs")
    if args.sweep_only and args.no_sweep:
        p.error("--sweep-only and --no-sweep leave nothing to do: give one of them")
    fusions = args.fusions.split(",")
    if unknown := set(fusions) - set(FUSIONS):
        p.error(f"unknown fusion {', '.join(sorted(unknown))}: choose from {', '.join(FUSIONS)}")
    results = {}
    if not args.sweep_only:
        results["compare"] = compare(cfg, device, base, f"{cfg.epochs} epochs", args.save, fusions)
        print_table(results["compare"])
    if not args.no_sweep:
        print(f"cost against the number of patches (random weights, a batch of {SWEEP_BATCH}):")
        results["sweep"] = sweep(device, base)
    if args.save:
        record = {"command": "python tests/benchmarks/compare_fusions.py " + " ".join(sys.argv[1:]),
                  "device": describe(device), "torch": torch.__version__, "recipe": values, "epochs": cfg.epochs,
                  **results}
        Path(args.save).mkdir(parents=True, exist_ok=True)
        (Path(args.save) / "compare_fusions.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
