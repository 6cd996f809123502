"""Command-line flags made from config dataclasses: one source of truth for names, types, defaults and help.

    python -m crossmodal.train --epochs 3 --batch-size 64 --decoder.gated true --vision.depth 2

Every field becomes a flag (`_` written `-`; a nested config's fields get its name and a dot), typed
by its annotation, with the comment beside (or above) the field as its help. The same idea as
nanoGPT's configurator, but typed and without exec.
"""

import argparse
import inspect
import re
from dataclasses import fields, is_dataclass, replace
from typing import get_type_hints


def add_flags(parser, config, prefix="", skip=()):
    """Add a --flag for each field of the dataclass instance `config` (its values are the defaults shown)."""
    hints, comments = get_type_hints(type(config)), _comments(type(config))
    for f in fields(config):
        name, value = prefix + f.name, getattr(config, f.name)
        if name in skip:
            continue
        if is_dataclass(value):
            add_flags(parser, value, name + ".", skip)
            continue
        kind = hints[f.name]
        help_text = f"{comments.get(f.name, '')} (default: {str(value).lower() if kind is bool else value})"
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=_PARSERS.get(kind, kind),
                            default=argparse.SUPPRESS, metavar=kind.__name__.upper(), help=help_text.strip())


def given(args, config):
    """{'decoder.gated': True, ...}: the flags of `config`'s fields that the command line set."""
    names = set(_names(config))
    return {k: v for k, v in vars(args).items() if k in names}


def apply(config, values):
    """A copy of `config` with {'dotted.name': value} replaced, nested dataclasses included."""
    changes = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            inner = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f.name + ".")}
            changes[f.name] = apply(value, inner)
        elif f.name in values:
            changes[f.name] = values[f.name]
    return replace(config, **changes)


def flatten(config, prefix=""):
    """{'dotted.name': value} of every field, for comparing two configs."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out.update(flatten(value, f"{prefix}{f.name}.") if is_dataclass(value) else {prefix + f.name: value})
    return out


def _names(config):
    return list(flatten(config))


def _bool(text):
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return words[text.lower()]


def _comments(cls):
    """{field: its comment}, read from the class's source: `name: type = value  # comment`, or comment lines above."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (a frozen install): flags without help
        return {}
    comments, above = {}, []
    for line in lines:
        if re.match(r"\s+#", line):
            above.append(line.split("#", 1)[1].strip())
        elif m := re.match(r"\s+(\w+):[^#]*(?:#\s*(.*))?$", line):
            comments[m[1]] = m[2] or " ".join(above)
            above = []
        else:
            above = []
    return comments


_PARSERS = {bool: _bool}
