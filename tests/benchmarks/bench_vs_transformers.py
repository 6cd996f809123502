"""crossmodal's captioner against a same-size transformers VisionEncoderDecoderModel (ViT + GPT-2
with cross-attention), on this machine's CPU. Not part of the test run: it prints numbers.

    CROSSMODAL_DATA=../shared/data python tests/benchmarks/bench_vs_transformers.py [--threads 2]

Measures training steps/s (batch 128), single-image caption latency (25 characters + <eos>),
the time to write captions for all 10,000 MNIST test images, and the time of our `evaluate`
(exact match by one teacher-forced pass, which needs no writing; transformers' row is its
`generate`, the usual way to score a captioner there). Both models share every size; ours is the
shipped checkpoint, theirs random weights forced to write the same number of tokens.
"""

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

from crossmodal import VisionLanguageModel, load_captioner, load_mnist
from crossmodal.data.mnist import MNIST_MEAN, MNIST_STD
from crossmodal.tasks.captions import caption_tokens, evaluate


def reference_model(cfg):
    v, d = cfg.vision, cfg.decoder
    vit = ViTConfig(image_size=v.image_size, patch_size=v.patch_size, num_channels=v.in_chans, hidden_size=v.dim,
                    num_hidden_layers=v.depth, num_attention_heads=v.num_heads,
                    intermediate_size=int(v.dim * v.mlp_ratio), hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
    gpt2 = GPT2Config(vocab_size=d.vocab_size, n_positions=d.block_size, n_embd=d.dim, n_layer=d.depth,
                      n_head=d.num_heads, n_inner=int(d.dim * d.mlp_ratio), add_cross_attention=True, is_decoder=True,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=cfg.bos_id,
                      eos_token_id=cfg.eos_id, pad_token_id=cfg.pad_id)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit, gpt2)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = cfg.bos_id, cfg.pad_id, cfg.eos_id
    return VisionEncoderDecoderModel(config=config)


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def train_steps_per_second(model, forward, images, tokens, steps=20, **optimizer_kind):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, **optimizer_kind)
    model.train()

    def step():
        logits = forward(images, tokens[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    timed(step, 3)  # warm-up
    return 1 / statistics.median(timed(step, steps))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", help="a training folder instead of the shipped checkpoint")
    p.add_argument("--compile", action="store_true", help="also time our step compiled (torch.compile)")
    args = p.parse_args()
    load = (lambda: VisionLanguageModel.from_pretrained(args.checkpoint)) if args.checkpoint else load_captioner
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ours = load()
    cfg = ours.config
    if cfg.vision.stem != "patch":  # transformers' ViT embeds patches linearly: compare the same architecture
        cfg = copy.deepcopy(cfg)
        cfg.vision.stem, cfg.vision.stem_channels = "patch", 0
        ours = VisionLanguageModel(cfg, ours.tokenizer)
        print("the shipped captioner has a convolutional stem, which transformers' ViT cannot build: the training "
              "rows compare a captioner of the same sizes with the linear patch embedding, at random weights")
    theirs = reference_model(cfg)
    images, labels = load_mnist(train=False)
    tokens = caption_tokens(ours.tokenizer)[labels[:128]]
    batch = images[:128]
    normalise = lambda x: (x - MNIST_MEAN) / MNIST_STD  # noqa: E731
    n_ours, n_theirs = (sum(p.numel() for p in m.parameters()) for m in (ours, theirs))
    print(f"threads: {torch.get_num_threads()}; parameters: crossmodal {n_ours:,}, transformers {n_theirs:,}")

    rows = []
    theirs_train = train_steps_per_second(
        theirs, lambda x, t: theirs(pixel_values=normalise(x), decoder_input_ids=t).logits, batch, tokens)
    plain = train_steps_per_second(ours, lambda x, t: ours(x, t), batch, tokens)
    rows.append(("training steps/s, both AdamW's default loop", plain, theirs_train, plain / theirs_train))
    ours_train = train_steps_per_second(ours, lambda x, t: ours(x, t), batch, tokens, foreach=True)
    rows.append(("  ours as train() runs it (AdamW foreach)", ours_train, theirs_train, ours_train / theirs_train))
    if args.compile:
        compiled = torch.compile(ours)
        fast = train_steps_per_second(ours, lambda x, t: compiled(x, t), batch, tokens, foreach=True)
        rows.append(("  ours with --compile", fast, theirs_train, fast / theirs_train))

    ours = load()  # fresh weights: the training steps above changed them
    theirs.eval()
    seven = images[labels == 7][0]  # (1, 28, 28); "This is the number seven." = 25 characters
    assert ours.caption(seven).text == "This is the number seven."
    ours_caption = statistics.median(timed(lambda: ours.caption(seven), 50)) * 1000
    ours_generate = statistics.median(timed(lambda: ours.generate(seven), 50)) * 1000

    def theirs_generate(x):
        with torch.inference_mode():
            return theirs.generate(pixel_values=normalise(x), max_new_tokens=26, min_new_tokens=26, do_sample=False)

    theirs_latency = statistics.median(timed(lambda: theirs_generate(seven[None]), 20)) * 1000
    rows.append(("caption 1 image, ms (greedy, 26 tokens)", ours_generate, theirs_latency,
                 theirs_latency / ours_generate))
    rows.append(("caption 1 image + attention maps, ms", ours_caption, theirs_latency, theirs_latency / ours_caption))

    ours_eval = min(timed(lambda: evaluate(ours, images, labels), 2))
    accuracy = evaluate(ours, images, labels)["exact_match"]
    theirs_eval = min(timed(lambda: [theirs_generate(images[i : i + 1000]) for i in range(0, 10000, 1000)], 1))
    ours_write = min(timed(lambda: [ours.generate(images[i : i + 1000]) for i in range(0, 10000, 1000)], 1))
    rows.append(("write 10k test captions (generate), s", ours_write, theirs_eval, theirs_eval / ours_write))
    rows.append(("exact match on 10k (ours: evaluate), s", ours_eval, theirs_eval, theirs_eval / ours_eval))

    print(f"{'':44}{'crossmodal':>12}{'transformers':>14}{'advantage':>11}")
    for name, a, b, ratio in rows:
        print(f"{name:44}{a:12.2f}{b:14.2f}{ratio:10.1f}×")
    print(f"shipped checkpoint: test caption exact match {accuracy:.2%}")


if __name__ == "__main__":
    main()
