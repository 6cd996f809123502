"""Caption an image file from the command line.

    python -m crossmodal.caption digit.png
    python -m crossmodal.caption digit.png --attention-png maps.png --checkpoint runs/captioner

Any picture of a digit works (any size, dark-on-light or light-on-dark): it is turned into an
MNIST-like 28×28 input first, with MNIST's own recipe.
"""

import argparse
import sys

from PIL import Image, UnidentifiedImageError

from .data import BlankImageError, preprocess_drawing
from .model import Captioner
from .pretrained import load_pretrained


def main(argv=None):
    p = argparse.ArgumentParser(description="Caption a picture of a handwritten digit.")
    p.add_argument("image", help="an image file (PNG, JPEG, ...)")
    p.add_argument("--checkpoint", help="a folder written by crossmodal.train (default: the shipped captioner)")
    p.add_argument("--attention-png", metavar="PATH", help="also write the per-character attention maps here")
    args = p.parse_args(argv)

    try:
        picture = Image.open(args.image)
        picture.load()
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        sys.exit(f"error: cannot read {args.image} as an image ({err})")
    try:
        image = preprocess_drawing(picture)
    except BlankImageError:
        sys.exit(f"error: {args.image} is blank: there is no digit to caption")
    model = Captioner.from_pretrained(args.checkpoint) if args.checkpoint else load_pretrained()
    result = model.caption(image)
    print(result.text)
    if args.attention_png:
        from .viz import plot_caption_strip

        plot_caption_strip(result).savefig(args.attention_png, dpi=100, bbox_inches="tight")
        print(f"attention maps written to {args.attention_png}")


if __name__ == "__main__":
    main()
