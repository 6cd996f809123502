"""Command-line flags made from config dataclasses: one source of truth for names, types, defaults and help.

    python -m crossmodal.train --epochs 3 --batch-size 64 --decoder.gated true --vision.depth 2

Every field becomes a flag (`_` written `-`; a nested config's fields get its name and a dot), typed
by its annotation, with the comment beside (or above) the field as its help. The same idea as
nanoGPT's configurator, but typed and without exec.
"""

import argparse
import inspect
import json
import re
from dataclasses import fields, is_dataclass, replace
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints


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
        shown = str(value).lower() if kind is bool else ",".join(map(str, value)) if isinstance(value, tuple) else value
        switch = {"nargs": "?", "const": True} if kind is bool else {}  # --flag alone means true; --flag false too
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=_parser(kind), default=argparse.SUPPRESS,
                            metavar=_metavar(kind), help=f"{comments.get(f.name, '')} (default: {shown})".strip(),
                            **switch)


def given(args, config):
    """{'decoder.gated': True, ...}: the flags of `config`'s fields that the command line set."""
    names = flatten(config)
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
    """{'dotted.name': value} of every field, values as JSON has them (tuples as lists), to compare configs."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out.update(flatten(value, f"{prefix}{f.name}.") if is_dataclass(value)
                   else {prefix + f.name: json.loads(json.dumps(value))})
    return out


def _parser(kind):
    """text -> value for a field's type: bool (true/false), int, float, str, a tuple ("4,7") or a union of these."""
    origin, args = get_origin(kind), get_args(kind)
    if kind is bool:
        return _bool
    if origin is tuple:
        return lambda text: tuple(_parser(args[0])(t) for t in text.split(","))
    if origin in (Union, UnionType):
        def parse(text):
            for option in args:
                try:
                    return _parser(option)(text)
                except (ValueError, argparse.ArgumentTypeError):
                    pass
            raise argparse.ArgumentTypeError(f"expected {_metavar(kind)}, got {text!r}")
        return parse
    return kind


def _metavar(kind):
    """INT, FLOAT, BOOL, STR; FLOAT,... for a tuple; INT|INT,INT for a union."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple:
        return ",".join("..." if a is Ellipsis else _metavar(a) for a in args)
    if origin in (Union, UnionType):
        return "|".join(_metavar(a) for a in args)
    return kind.__name__.upper()


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


def flatten_json(d, prefix=""):
    """{'a.b': 1} for {'a': {'b': 1}}: a JSON object (a saved config) flattened as `flatten` flattens a config,
    keys and values as JSON has them."""
    out = {}
    for k, v in json.loads(json.dumps(d)).items():
        out.update(flatten_json(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out
