"""How long the drawing pad's Python half takes per stroke: from the pixels arriving in Python to
the new caption, input image and attention strip ready to send (PNG bytes in the traits).

    python tests/benchmarks/bench_drawing_pad.py                  # the shipped model
    python tests/benchmarks/bench_drawing_pad.py --model runs/x   # a checkpoint folder
    python tests/benchmarks/bench_drawing_pad.py --all-threads    # without the pad's one-thread rule
    python tests/benchmarks/bench_drawing_pad.py --numbers 30     # wide mode: the shipped reader of numbers

The drawings imitate the pad: each digit is drawn stroke by stroke on a 280 × 280 canvas with a
22-pixel round brush, with its own random size, slant and position, then shrunk to the 112 × 112
the browser sends; every stroke's end is one update, as in the browser. In wide mode, numbers of
1 to 4 digits are written the same way on the wide pad's canvas (180 × 720, a 14-pixel brush), left
to right, each digit with its own size and slant and a random gap after it, and shrunk to the 72 × 288
the browser sends. Prints p50 / p90 over the strokes (after a few warm-up strokes) and how many
finished digits (or numbers) were read correctly.
Not part of the test run: timings depend on the machine and on what else runs on it.
"""

import argparse
import contextlib
import math
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

from crossmodal import VisionLanguageModel, load_captioner, load_reader
from crossmodal.data import DIGIT_WORDS
from crossmodal.widgets import DrawingPad, drawing_pad


def circle(cx, cy, rx, ry, start=0.0, turns=1.0, steps=24):
    """Points round an ellipse, clockwise on screen, starting at angle `start` (0 = right)."""
    return [(cx + rx * math.cos(start + 2 * math.pi * turns * i / steps),
             cy + ry * math.sin(start + 2 * math.pi * turns * i / steps)) for i in range(steps + 1)]


# Each digit as strokes, each stroke a polyline in a unit box (x right, y down), the way people draw them.
DIGITS = {
    0: [circle(0.5, 0.5, 0.3, 0.42, start=-math.pi / 2)],
    1: [[(0.5, 0.1), (0.5, 0.9)]],
    2: [[(0.22, 0.3), (0.32, 0.14), (0.5, 0.1), (0.7, 0.15), (0.75, 0.32), (0.64, 0.5), (0.22, 0.88), (0.8, 0.88)]],
    3: [[(0.25, 0.15), (0.55, 0.1), (0.74, 0.22), (0.65, 0.42), (0.42, 0.48), (0.66, 0.55), (0.78, 0.72),
         (0.62, 0.9), (0.24, 0.86)]],
    4: [[(0.3, 0.1), (0.2, 0.6), (0.8, 0.6)], [(0.66, 0.12), (0.66, 0.92)]],
    5: [[(0.3, 0.12), (0.27, 0.45), (0.55, 0.42), (0.75, 0.6), (0.7, 0.82), (0.45, 0.9), (0.22, 0.82)],
        [(0.3, 0.12), (0.74, 0.12)]],
    6: [[(0.68, 0.1), (0.42, 0.28), (0.28, 0.58), (0.32, 0.84), (0.54, 0.9), (0.72, 0.74), (0.62, 0.54),
         (0.4, 0.54), (0.28, 0.68)]],
    7: [[(0.2, 0.12), (0.8, 0.12), (0.42, 0.9)]],
    8: [[(0.5 + 0.25 * math.sin(2 * t), 0.5 - 0.4 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 40)]],
    9: [circle(0.48, 0.32, 0.2, 0.2, start=0.0), [(0.68, 0.32), (0.62, 0.9)]],
}


def strokes_of(digit, rng, canvas=280):
    """The digit's strokes in canvas pixels, with a random size, slant and position."""
    size = rng.uniform(0.5, 0.8) * canvas
    slant = rng.uniform(-0.25, 0.25)
    x0, y0 = rng.uniform(0.1, 0.9 - size / canvas) * canvas, rng.uniform(0.08, 0.92 - size / canvas) * canvas
    return placed(digit, x0, y0, size, slant)


def placed(digit, x0, y0, size, slant):
    """The digit's strokes from DIGITS in a size × size box at (x0, y0), slanted (positive: leaning right)."""
    return [[(x0 + size * (x + slant * (0.5 - y)), y0 + size * y) for x, y in stroke] for stroke in DIGITS[digit]]


def number_strokes(digits, rng, canvas=(180, 720)):
    """A number's strokes in canvas pixels, digit by digit, left to right: one writer's size and slant
    with a little variation from digit to digit, random gaps, the whole number anywhere it fits."""
    H, W = canvas
    size, slant = rng.uniform(0.55, 0.85) * H, rng.uniform(-0.2, 0.2)
    sizes = [size * rng.uniform(0.9, 1.1) for _ in digits]
    gaps = [s * rng.uniform(-0.05, 0.45) for s in sizes[1:]]  # between the boxes' inked middle 0.2–0.8: 0 touches
    width = sum(0.6 * s for s in sizes) + sum(gaps)
    x = rng.uniform(0.04 * W, max(0.04 * W, 0.96 * W - width)) - 0.2 * sizes[0]  # the first box's left edge
    strokes = []
    for i, (digit, s) in enumerate(zip(digits, sizes)):
        y0 = min(max((H - s) / 2 + rng.uniform(-0.06, 0.06) * H, 0), H - s)  # a little vertical jitter
        strokes.append(placed(digit, x, y0, s, slant + rng.uniform(-0.05, 0.05)))
        x += 0.6 * s + (gaps[i] if i < len(gaps) else 0)
    return strokes  # one list of strokes per digit


def frames_of(strokes, canvas, brush, resolution):
    """The pixels the browser sends after each stroke: drawn with a round brush, shrunk to `resolution`."""
    (H, W), (h, w) = canvas, resolution
    picture = Image.new("L", (W, H))
    pen = ImageDraw.Draw(picture)
    frames = []
    for stroke in strokes:
        pen.line(stroke, fill=255, width=brush, joint="curve")
        for x, y in (stroke[0], stroke[-1]):  # round caps, as the canvas draws them
            pen.ellipse([x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2], fill=255)
        frames.append(picture.resize((w, h), Image.BILINEAR, reducing_gap=None).tobytes())
    return frames


def drawing_sessions(count, rng, canvas=280, brush=22, side=112):
    """Yield (caption expected, pixels after each stroke) for `count` drawn digits: what the browser sends."""
    for i in range(count):
        digit = i % 10
        yield f"This is the number {DIGIT_WORDS[digit]}.", frames_of(strokes_of(digit, rng, canvas), (canvas, canvas),
                                                                    brush, (side, side))


def number_sessions(count, rng, pad):
    """Yield (number expected, pixels after each stroke) for `count` numbers of 1 to 4 digits on the wide pad."""
    max_digits = pad.image_size[1] // pad.image_size[0]
    for i in range(count):
        digits = rng.integers(0, 10, size=i % max_digits + 1).tolist()  # as many of each length
        strokes = [s for digit in number_strokes(digits, rng, pad.canvas_size) for s in digit]
        yield "".join(map(str, digits)), frames_of(strokes, pad.canvas_size, pad.brush, pad.resolution)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a checkpoint folder (default: the shipped model)")
    p.add_argument("--digits", type=int, default=30, help="digits drawn (about 1.3 strokes each)")
    p.add_argument("--numbers", type=int, default=0,
                   help="wide mode: numbers written instead of digits (1 to 4 digits each, about 3.3 strokes), "
                        "with the shipped reader of numbers or --model's")
    p.add_argument("--threads", type=int, default=2, help="torch threads, as the notebooks set (default 2)")
    p.add_argument("--all-threads", action="store_true",
                   help="let the model use all --threads instead of the one the pad switches to")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.all_threads:
        drawing_pad.one_thread = contextlib.nullcontext
    if args.model:
        model = VisionLanguageModel.from_pretrained(args.model)
    else:
        model = load_reader() if args.numbers else load_captioner()
    pad = DrawingPad(model)
    if args.numbers and not pad.wide:
        p.error(f"--numbers needs a reader of numbers (wide images); {args.model} reads {pad.image_size} images")
    rng = np.random.default_rng(0)
    sessions = (lambda n: number_sessions(n, rng, pad)) if args.numbers else (lambda n: drawing_sessions(n, rng))

    for _, frames in sessions(3):  # warm-up: first calls allocate and load
        for pixels in frames:
            pad.update_from_pixels(pixels)

    seconds, cpu, correct, count = [], [], 0, args.numbers or args.digits
    for expected, frames in sessions(count):
        for pixels in frames:
            start, start_cpu = time.perf_counter(), time.process_time()
            pad.update_from_pixels(pixels)  # what the pixels trait's observer runs
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        correct += pad.caption == expected

    ms = np.array(seconds) * 1000
    threads = args.threads if args.all_threads else 1
    print(f"{len(ms)} strokes, model on {threads} torch thread(s): p50 {np.percentile(ms, 50):.1f} ms, "
          f"p90 {np.percentile(ms, 90):.1f} ms, max {ms.max():.1f} ms")
    print(f"CPU time per stroke: p50 {np.percentile(cpu, 50) * 1000:.1f} ms "
          "(what the wall-clock time would be with a core to itself; it differs when other processes compete)")
    what = "numbers" if args.numbers else "digits"
    print(f"finished {what} read correctly: {correct}/{count} (synthetic strokes, a sanity check)")


if __name__ == "__main__":
    main()
