"""Every snippet of the README runs as printed, so that a newcomer who pastes one gets what it says.

Each ```python block is run on its own, top to bottom, in a fresh namespace. A line that is an expression
followed by a comment that starts with a Python literal (`x.text  # 'This is the number seven.'`,
`tuple(t.shape)  # (25, 2, 4, 7, 7): ...`) must give that value. Each command of a ```bash block that runs
`python -m crossmodal.train` (directly or under torchrun) is parsed by the command line's own parser, so a flag
the README names exists.
"""

import ast
import re
import shlex
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", README, re.S)
BASH = re.findall(r"```bash\n(.*?)```", README, re.S)


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


@pytest.mark.parametrize("code", PYTHON, ids=[f"block{i}" for i in range(len(PYTHON))])
def test_python_block_runs_and_gives_what_its_comments_say(code, mnist_test):
    namespace = {}
    for node, expected in checks(code):
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "<README>", "eval"), namespace)
            if expected is not None:
                assert value == expected[0], f"{ast.unparse(node)} gives {value!r}, the README says {expected[0]!r}"
        else:
            exec(compile(ast.Module([node], type_ignores=[]), "<README>", "exec"), namespace)


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
