"""What every command line shares: a mistake gets one line on stderr and a non-zero exit, never a traceback.

    error: --lr must be a finite number, got inf

`Parser` is argparse with that rule for bad flags (exit code 2, no usage block: `--help` shows it); `one_line`
turns an exception into the line a command exits with (exit code 1).
"""

import argparse


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message} (see python -m {self.prog.removeprefix('python -m ')} --help)\n")


def one_line(err):
    """The first line of an exception's message, prefixed as every command's errors are."""
    text = str(err).strip()
    return f"error: {text.splitlines()[0] if text else type(err).__name__}"
