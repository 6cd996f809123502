"""How long the drawing pad's Python half takes per stroke: from the pixels arriving in Python to
the new caption, input image and attention strip ready to send (PNG bytes in the traits).

    python tests/benchmarks/bench_drawing_pad.py                  # the shipped model
    python tests/benchmarks/bench_drawing_pad.py --model runs/x   # a checkpoint folder
    python tests/benchmarks/bench_drawing_pad.py --all-threads    # without the pad's one-thread rule

The drawings imitate the pad: each digit is drawn stroke by stroke on a 280 × 280 canvas with a
22-pixel round brush, with its own random size, slant and position, then shrunk to the 112 × 112
the browser sends; every stroke's end is one update, as in the browser. Prints p50 / p90 over
the strokes (after a few warm-up strokes) and how many finished digits were read correctly.
Not part of the test run: timings depend on the machine and on what else runs on it.
"""

import argparse
import contextlib
import math
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

from crossmodal import Captioner, load_pretrained
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
    return [[(x0 + size * (x + slant * (0.5 - y)), y0 + size * y) for x, y in stroke] for stroke in DIGITS[digit]]


def drawing_sessions(count, rng, canvas=280, brush=22, side=112):
    """Yield (digit, pixels after each stroke) for `count` drawn digits: what the browser sends."""
    for i in range(count):
        digit = i % 10
        picture = Image.new("L", (canvas, canvas))
        pen = ImageDraw.Draw(picture)
        frames = []
        for stroke in strokes_of(digit, rng, canvas):
            pen.line(stroke, fill=255, width=brush, joint="curve")
            for x, y in (stroke[0], stroke[-1]):  # round caps, as the canvas draws them
                pen.ellipse([x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2], fill=255)
            frames.append(picture.resize((side, side), Image.BILINEAR, reducing_gap=None).tobytes())
        yield digit, frames


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a checkpoint folder (default: the shipped model)")
    p.add_argument("--digits", type=int, default=30, help="digits drawn (about 1.3 strokes each)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, as the notebooks set (default 2)")
    p.add_argument("--all-threads", action="store_true",
                   help="let the model use all --threads instead of the one the pad switches to")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.all_threads:
        drawing_pad.one_thread = contextlib.nullcontext
    model = Captioner.from_pretrained(args.model) if args.model else load_pretrained()
    pad = DrawingPad(model)
    rng = np.random.default_rng(0)

    for _, frames in drawing_sessions(3, rng):  # warm-up: first calls allocate and load
        for pixels in frames:
            pad.update_from_pixels(pixels)

    seconds, correct = [], 0
    for digit, frames in drawing_sessions(args.digits, rng):
        for pixels in frames:
            start = time.perf_counter()
            pad.update_from_pixels(pixels)  # what the pixels trait's observer runs
            seconds.append(time.perf_counter() - start)
        correct += pad.caption == f"This is the number {DIGIT_WORDS[digit]}."

    ms = np.array(seconds) * 1000
    threads = args.threads if args.all_threads else 1
    print(f"{len(ms)} strokes, model on {threads} torch thread(s): p50 {np.percentile(ms, 50):.1f} ms, "
          f"p90 {np.percentile(ms, 90):.1f} ms, max {ms.max():.1f} ms")
    print(f"finished digits read correctly: {correct}/{args.digits} (synthetic strokes, a sanity check)")


if __name__ == "__main__":
    main()
