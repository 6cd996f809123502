"""Every snippet of the README runs as printed, so that a newcomer who pastes one gets what it says.

Each ```python block is run as a newcomer pastes it, reading the README top to bottom: in a Python of its own,
started outside the clone, offline, with a home of its own (nothing in ~/.cache), and with nothing but what the
README said above the block: `CROSSMODAL_DATA` is set only once a ```bash block above has exported it (its
placeholder read as this machine's MNIST folder). A line that is an expression followed by a comment that starts
with a Python literal (`x.text  # 'This is the number seven.'`, `tuple(t.shape)  # (25, 2, 4, 7, 7): ...`) must
give that value. Each command of a ```bash block that runs `python -m crossmodal.train` (directly or under
torchrun) is parsed by the command line's own parser, so a flag the README names exists.
"""

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)  # (language, code), in the README's order
PYTHON = [code for language, code in BLOCKS if language == "python"]
BASH = [code for language, code in BLOCKS if language == "bash"]


def stated_value(comment):
    """The Python literal a comment starts with (the longest prefix that parses), or None."""
    comment = comment.strip()
    for end in range(len(comment), 0, -1):
        try:
            return (ast.literal_eval(comment[:end]),)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


def checks(code):
    """(statement, expected value or None) for each top-level statement of a block."""
    lines = code.splitlines()
    out = []
    for node in ast.parse(code).body:
        rest = lines[node.end_lineno - 1][node.end_col_offset :]  # what follows the statement on its last line
        comment = rest.split("#", 1)[1] if "#" in rest else ""
        expected = stated_value(comment) if isinstance(node, ast.Expr) and comment else None
        out.append((node, expected))
    return out


def test_the_readme_has_snippets_that_state_values():
    stated = [e for code in PYTHON for _, e in checks(code) if e is not None]
    assert len(PYTHON) >= 3 and len(stated) >= 6


def run_block(code):
    """Run one block, statement by statement, checking the values its comments state (AssertionError if not)."""
    namespace = {}
    for node, expected in checks(code):
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "<README>", "eval"), namespace)
            if expected is not None:
                assert value == expected[0], f"{ast.unparse(node)} gives {value!r}, the README says {expected[0]!r}"
        else:
            exec(compile(ast.Module([node], type_ignores=[]), "<README>", "exec"), namespace)


def exported_above(index):
    """The environment variables the ```bash blocks before block `index` export, as {name: value}."""
    exported = {}
    for language, code in BLOCKS[:index]:
        if language == "bash":
            for line in code.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["export"]:
                    exported.update(word.split("=", 1) for word in words[1:] if "=" in word)
    return exported


def mnist_here():
    """This machine's MNIST folder (what the README's CROSSMODAL_DATA placeholder stands for), or a skip."""
    from crossmodal.data.mnist import data_root

    if not (data_root() / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have MNIST in {data_root()}", pytrace=False)
        pytest.skip(f"no MNIST in {data_root()} to stand for the README's CROSSMODAL_DATA")
    return data_root()


PYTHON_AT = [i for i, (language, _) in enumerate(BLOCKS) if language == "python"]


@pytest.mark.parametrize("index", PYTHON_AT, ids=[f"block{i}" for i in range(len(PYTHON_AT))])
def test_python_block_pasted_in_order_runs_offline_and_gives_what_its_comments_say(index, tmp_path):
    data = mnist_here()
    env = {k: v for k, v in os.environ.items() if k != "CROSSMODAL_DATA"}  # only what the README said
    exported = exported_above(index)
    env.update(exported)
    if "CROSSMODAL_DATA" in exported:
        env["CROSSMODAL_DATA"] = str(data)  # the reader's own folder in place of the placeholder
    env["HOME"] = str(tmp_path / "home")  # a newcomer's: no MNIST in ~/.cache/crossmodal
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])  # pip install -e
    outside = tmp_path / "elsewhere"  # not the clone: no path of the README may lean on the working directory
    outside.mkdir()
    (outside / "block.py").write_text(BLOCKS[index][1])
    run = subprocess.run([sys.executable, __file__, "block.py"], cwd=outside, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, (f"README block {PYTHON_AT.index(index)}, pasted after what the README says above "
                                 f"it (exported: {exported or 'nothing'}), fails offline:\n{run.stderr[-3000:]}")


if __name__ == "__main__":  # the newcomer's Python: offline, running the block it was given
    import socket

    def offline(*args, **kwargs):
        raise OSError("offline: the newcomer has no internet")

    socket.socket.connect = socket.socket.connect_ex = offline
    run_block(Path(sys.argv[1]).read_text())


def train_commands():
    """Every `python -m crossmodal.train ...` of the README's bash blocks, as argv lists (line continuations joined)."""
    commands = []
    for block in BASH:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if "-m crossmodal.train" in line:
                words = shlex.split(line)
                commands.append(words[words.index("crossmodal.train") + 1 :])
    return commands


def test_every_training_command_of_the_readme_parses():
    from crossmodal import train as train_cli
    from crossmodal.tasks import get_task

    commands = train_commands()
    assert len(commands) >= 6  # the tasks, torchrun on one machine and on several
    for argv in commands:
        task = get_task(argv[argv.index("--task") + 1] if "--task" in argv else "captions")
        train_cli.parser_for(task).parse_args(argv)  # exits on an unknown flag or a bad value
