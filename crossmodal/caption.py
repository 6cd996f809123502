"""Caption an image file from the command line.

    python -m crossmodal.caption digit.png
    python -m crossmodal.caption digit.png --attention-png maps.png --checkpoint runs/captions
    python -m crossmodal.caption digit.png --device cuda

Any picture of a digit works (any size, dark-on-light or light-on-dark, palette or 16-bit,
a phone photo's EXIF rotation, ink on a transparent canvas): it is turned into an MNIST-like
28×28 input first, with MNIST's own recipe. It prints the caption, then how sure the model was.
A file that cannot be read, or that is noise or a blot rather than a drawing (the drawing pad's
rule, drawings.py), gets one line of explanation and a non-zero exit status, never a traceback.
"""

import os
import sys
import warnings
from pathlib import Path

from .cli import Parser, one_line
from .devices import pick_device
from .drawings import NotADrawing, check_not_a_blot, check_strokes
from .images import BlankImageError, preprocess_drawing, raster_formats


def main(argv=None):
    p = Parser(prog="python -m crossmodal.caption",
                                description="Caption a picture of a handwritten digit.")
    p.add_argument("image", help="an image file (PNG, JPEG, GIF, TIFF, ...)")
    p.add_argument("--checkpoint", help="a folder written by crossmodal.train (default: the shipped captioner)")
    p.add_argument("--attention-png", metavar="PATH", help="also write the per-character attention maps here (a new "
                                                             "file; an existing one only with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace the file --attention-png names if it exists")
    p.add_argument("--device", default="cpu", help="cpu (default: one picture is quickest there), cuda, mps or auto")
    args = p.parse_args(argv)
    try:
        if args.checkpoint is not None and not args.checkpoint.strip():  # "" would mean the shipped captioner
            raise ValueError("--checkpoint is empty: give the folder of a saved captioner, or leave --checkpoint out")
        if args.attention_png:
            check_output(args.attention_png, args.image, args.overwrite)  # before any work, not after it
        device = pick_device(args.device)
        picture = read_picture(args.image)
        check_strokes(picture)  # noise, a blot: the model would name a digit for it, sure of itself
        image = check_not_a_blot(preprocess_drawing(picture))
        model = load_model(args.checkpoint, device)
        result = model.caption(image)
        if not result.text:
            raise ValueError(f"the model wrote nothing for {args.image} (it ended at once): it has no caption, and no "
                             "maps to draw; try a clearer picture, or another --checkpoint")
    except BlankImageError:
        sys.exit(f"error: {args.image} is blank: there is no digit to caption")
    except NotADrawing as err:
        sys.exit(f"error: {args.image}: {str(err)[0].lower()}{str(err)[1:]}")
    except (ValueError, OSError) as err:
        sys.exit(one_line(err))
    except KeyboardInterrupt:
        sys.exit("error: stopped (Ctrl-C); nothing was written")
    print(result.text)
    print(f"{100 * result.sureness:.0f}% sure" + (": unsure, check it" if result.sureness < 0.5 else ""))
    if args.attention_png:
        from .viz import plot_caption_strip

        path = Path(args.attention_png)
        writing = path.with_name(f".{path.name}.writing{path.suffix}")  # beside it: an old file stays whole until
        try:  # the new one is complete, then the rename swaps them
            plot_caption_strip(result).savefig(writing, dpi=100, bbox_inches="tight", format=path.suffix[1:].lower())
            writing.replace(path)
        except OSError as err:  # a full disk, a file that cannot be replaced: no half-written picture is left
            writing.unlink(missing_ok=True)
            sys.exit(f"error: cannot write {args.attention_png} ({err.strerror or err}); the caption is above")
        print(f"attention maps written to {args.attention_png}")


def read_picture(path):
    """Open an image file and decode it (its first frame), or raise ValueError saying why not."""
    from PIL import Image

    if not Path(path).is_file():
        why = "it is a folder" if Path(path).is_dir() else \
            "it is not a regular file (a device or a pipe)" if Path(path).exists() else "there is no such file"
        raise ValueError(f"cannot read {path}: {why}; give the path of an image file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # too large is an error, not a warning
        try:
            picture = Image.open(path, formats=raster_formats())  # never EPS: Pillow would run Ghostscript on it
            picture.load()  # decode now, so a truncated file fails here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ValueError(f"{path} is too large to open safely ({err}); scale it down first") from None
        except Exception as err:  # Pillow's decoders raise many kinds (OSError, SyntaxError, struct.error ...)
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"cannot read {path} as an image ({reason}): is it a complete PNG, JPEG, GIF, BMP, "
                             "TIFF or WebP file?") from None
    return picture


def check_output(path, image=None, overwrite=False):
    """Raise ValueError unless matplotlib can write a picture at `path` (known extension, writable folder), and
    unless `path` is a new file, or overwrite is given. The picture being captioned (`image`) is never replaced."""
    from matplotlib.backend_bases import FigureCanvasBase

    path, folder = Path(path), Path(path).absolute().parent
    formats = FigureCanvasBase.get_supported_filetypes()
    if image is not None and path.exists() and Path(image).exists() and os.path.samefile(path, image):
        raise ValueError(f"--attention-png {path} is the picture being captioned: give the maps a file of their own")
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        raise ValueError(f"--attention-png {path}: the file is there and cannot be replaced (read-only); give "
                         "another name")
    if path.exists() and not path.is_dir() and not overwrite:
        raise ValueError(f"--attention-png {path} already exists: give a new file name, or add --overwrite to "
                         "replace it")
    if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        why = "is a folder" if path.is_dir() else f"folder {folder} is not there" if not folder.is_dir() \
            else f"folder {folder} is not writable"
        raise ValueError(f"--attention-png {path}: {why}; give a file name in a folder that exists")
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(f"--attention-png {path}: cannot write a {path.suffix or 'file without extension'}; "
                         f"end the name with one of {', '.join('.' + f for f in sorted(formats))}")


def load_model(checkpoint, device="cpu"):
    """The captioner in `checkpoint` (a folder a captions run wrote), or the shipped one."""
    from .nn import VisionLanguageModel
    from .pretrained import load_captioner

    return VisionLanguageModel.from_pretrained(checkpoint, device) if checkpoint else load_captioner(device)


if __name__ == "__main__":
    main()
