"""Checkpoint folders on disk: written as a unit, guarded before a run starts, read with clear errors.

A checkpoint is several files (weights, config, tokenizer, and while training the optimizer and the
step). Writing them one after another into the folder in use would leave a mix of two steps if the
process died half way. So `replacing(folder)` writes a complete new folder beside the old one and
swaps the two with renames: at any moment there is one whole checkpoint, the old or the new.

Where a run may write, one rule (`check_place`, for the command lines and the library's savers alike): never inside
the crossmodal package (its shipped models are the package's own), never the working directory or a folder that
holds it (a save swaps the folder away by renaming it). Every command line that writes a folder checks it first
with `check_out` (nothing is replaced without --overwrite, a folder holding a user's files is refused), then takes
`RunLock`, and only then tidies up after a killed save (`recover`): guard, lock, recover, in that order, so that a
second command never touches the folder of a run that is still going.
"""

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
OPTIMIZER, TRAINER_STATE, RECORD = "optimizer.safetensors", "trainer_state.json", "training.json"
STEPPED = "stepped.safetensors"  # with a weight average: the stepped weights (model.safetensors holds the average)
# the files crossmodal writes as a set; anything else in a checkpoint folder is the user's and is kept
OWN_FILES = {WEIGHTS, CONFIG, TOKENIZER, "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
             "generation_config.json", OPTIMIZER, STEPPED, TRAINER_STATE, RECORD}


def _siblings(folder):
    """The folder's real path (a link followed to its target), and its two temporary neighbours in the same
    parent, so that the renames are atomic and a linked folder is replaced where it really is."""
    folder = Path(os.path.realpath(folder))
    return folder, folder.with_name(f".{folder.name}.saving"), folder.with_name(f".{folder.name}.replaced")


def foreign_files(folder):
    """Names in `folder` that are not a checkpoint's files: a checkpoint folder holds nothing else."""
    folder = Path(folder)
    return sorted(f.name for f in folder.iterdir() if f.name not in OWN_FILES) if folder.is_dir() else []


@contextmanager
def replacing(folder):
    """Yield an empty folder to write a whole checkpoint into; at the end it takes `folder`'s place.

    If the block raises, `folder` is left as it was. A folder holding other files is refused
    rather than swapped away with them.
    """
    check_place(folder, "cannot save into")
    folder, new, old = _siblings(folder)
    recover(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file: a checkpoint is a folder")
    if others := foreign_files(folder):
        raise ValueError(f"{folder} holds files that are not a checkpoint's ({', '.join(others[:3])}): "
                         "save the checkpoint into a folder of its own")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    try:
        yield new
        one_mode(new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if folder.exists():
        folder.rename(old)
    new.rename(folder)  # the commit point: from here on `folder` is the new checkpoint
    shutil.rmtree(old, ignore_errors=True)


def one_mode(folder):
    """Give every file in `folder` the mode a new file gets here (the umask's: -rw-r--r-- under the usual 022).

    safetensors writes its files -rw------- whatever the umask, and the JSON beside them follows the umask: on a
    shared file system the others would read a run's config but not its weights.
    """
    probe = folder / ".mode"
    probe.touch()  # made as any new file is: 0o666 less the umask (and what the file system adds)
    mode = probe.stat().st_mode & 0o777
    probe.unlink()
    for f in folder.iterdir():
        if f.is_file() and not f.is_symlink():
            f.chmod(mode)


def recover(folder):
    """Tidy up after a save that was killed part way; afterwards `folder` holds one whole checkpoint."""
    folder, new, old = _siblings(folder)
    if old.exists() and not folder.exists():  # killed between the two renames: take the old one back
        old.rename(folder)
    shutil.rmtree(old, ignore_errors=True)  # killed after the swap, while deleting the old one
    shutil.rmtree(new, ignore_errors=True)  # killed while writing the new one


def readable_folder(folder):
    """The folder to read a checkpoint from: `folder`, or the old copy a save killed between its renames left."""
    folder, _, old = _siblings(folder)
    return old if not folder.exists() and old.exists() else folder


def read_json(path):
    """A JSON file of a checkpoint as a dict, or a ValueError naming the file and what is wrong with it."""
    path = Path(path)
    try:
        if not path.is_file():
            raise ValueError("it is not there" if not path.exists() else "it is not a regular file")
        value = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: JSON nested thousands deep
        reason = str(err) if isinstance(err, ValueError) and str(err).startswith("it is") else \
            f"not valid JSON: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        raise ValueError(f"cannot read {path} ({reason})") from None
    if not isinstance(value, dict):
        raise ValueError(f"cannot read {path} (it holds a JSON {type(value).__name__}, not an object)")
    return value


def write_json(path, value):
    """Write `value` as JSON to `path` atomically: a reader sees the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    tmp.replace(path)


PACKAGE = Path(os.path.realpath(__file__)).parent  # the installed crossmodal: its checkpoints/ are the shipped models


def check_place(folder, doing="--out"):
    """Refuse a folder no run or save may write: inside the package, or the working directory (or one holding it).

    doing: how the sentence starts, e.g. "--out" or "cannot save into". Touches nothing.
    """
    if not str(folder).strip():
        raise ValueError(f"{doing} is empty: give a folder for the checkpoint, e.g. runs/NAME")
    real = Path(os.path.realpath(folder))
    if real.parent == real:
        raise ValueError(f"{doing} {folder} is the root of the file system: give a folder of its own for the "
                         "checkpoint")
    if real == PACKAGE or PACKAGE in real.parents:
        raise ValueError(f"{doing} {folder} lies inside the crossmodal package ({PACKAGE}): its shipped models are the "
                         "package's own, never a run's folder; write into another folder (e.g. runs/NAME) and copy "
                         "the result there by hand if you mean to replace one")
    here = Path(os.path.realpath(os.getcwd()))
    if real == here or real in here.parents:
        raise ValueError(f"{doing} {folder} is the working directory{'' if real == here else ' or holds it'}: a "
                         "checkpoint is saved by swapping its whole folder, so give one of its own, e.g. runs/NAME")


def check_out(out, flag="--out", resume=False, overwrite=False, run_file=TRAINER_STATE):
    """Refuse an output folder a command cannot use, or would destroy without being asked to; before any work.

    resume: the folder must hold a run to continue (`run_file`); overwrite: a checkpoint there may be replaced.
    A folder holding anything but a checkpoint's files is always refused: its files are the user's. Touches
    nothing (the guard comes before the lock, and the lock before `recover`).
    """
    check_place(out, flag)
    out = Path(out)
    if resume and overwrite:
        raise ValueError(f"--resume continues the run in {flag} and --overwrite replaces it: give one of them")
    real = Path(os.path.realpath(out))
    if out.is_symlink() and not real.exists():
        raise ValueError(f"{flag} {out} is a link to {real}, which is not there: link it to a folder, or give another")
    if real.exists() and not real.is_dir():
        raise ValueError(f"{flag} {out} is a file: give a folder for the checkpoint")
    parent = next(p for p in real.parents if p.exists())  # checkpoints are swapped in there
    if not parent.is_dir():
        raise ValueError(f"{flag} {out} cannot be made: {parent} is a file, not a folder")
    for folder in [parent, real] if real.exists() else [parent]:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {out} cannot be written ({folder} is not writable): choose another folder")
    if resume:
        if not (readable_folder(real) / run_file).is_file():  # a save killed between its renames: the old copy
            raise ValueError(f"--resume: {out} holds no run to continue (no {run_file}); "
                             "leave out --resume to start a new run")
    elif real.is_dir() and any(real.iterdir()) and not overwrite:
        raise ValueError(f"{flag} {out} already holds files (a trained model?): choose a new folder, add --resume "
                         "to continue its training, or --overwrite to replace its checkpoint")
    if others := foreign_files(real):
        raise ValueError(f"{flag} {out} holds files that are not a checkpoint's ({', '.join(others[:3])}): "
                         f"a run's folder holds its checkpoint only; choose another {flag}, or move them")
    return real


class RunLock:
    """Held while a command writes into a folder: a second command on the same folder is refused at once.

    The lock is a file beside the folder (`.NAME.lock`, made with O_EXCL) holding the process id; a lock
    left by a process that no longer runs (killed with -9) is taken over.
    """

    def __init__(self, folder, flag="--out"):
        real = Path(os.path.realpath(folder))
        self.path, self.folder, self.flag = real.with_name(f".{real.name}.lock"), folder, flag

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _alive(self.path):
                    raise ValueError(f"{self.flag} {self.folder} is in use by another run (process "
                                     f"{self.path.read_text().strip() or '?'}): wait for it, or choose another "
                                     f"{self.flag}") from None
                self.path.unlink(missing_ok=True)  # left by a run that was killed: take it over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise ValueError(f"{self.flag} {self.folder}: could not take its lock {self.path}; remove it if no run uses it")

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _alive(lock):
    """Whether the process named in a lock file still runs (on this machine)."""
    try:
        pid = int(lock.read_text().strip())
        os.kill(pid, 0)
    except PermissionError:  # there is such a process, another user's
        return True
    except (ValueError, OSError):  # unreadable, or no such process
        return False
    return True
