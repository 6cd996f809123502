"""Build the teaching notebooks from their plain-text sources, run them, and store them with outputs.

    CROSSMODAL_DATA=/path/to/data python tools/notebooks/build.py             # every notebook
    CROSSMODAL_DATA=/path/to/data python tools/notebooks/build.py 01 03       # the ones whose name starts so
    python tools/notebooks/build.py --prose 05     # only copy edited markdown in; nothing runs

Each notebook's source is `tools/notebooks/NAME.py` in the "percent" format (jupytext can open
it too): cells start at a line `# %%`; `# %% [markdown]` cells hold markdown as `# ` comment
lines; `# %% [solution]` is a code cell stored collapsed (an exercise's solution, out of the way
until a learner opens it). The notebook `notebooks/NAME.ipynb` is regenerated from it, executed
top to bottom in a fresh kernel (execution counts 1..n), and written with its outputs, so that
`pytest --nbval notebooks/` can compare a fresh run against it. Edit the source, not the .ipynb.

Every notebook opens the same way, so the sources leave it out and `cells()` adds it: a Colab badge
at the top of the first markdown cell and, after that cell, the cell that installs the library when it
is missing. Both are made from the one repository URL, `[project.urls] Repository` in pyproject.toml.

After a build, check the notebook the way CI does, as the machine is and with lower CPU kernels (the
float results then differ in their last bits, as on a CPU of another generation; see README, "Contributing"):

    python -m pytest --nbval notebooks/NAME.ipynb
    ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 python -m pytest --nbval notebooks/NAME.ipynb
"""

import re
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse(text):
    """Percent-format text -> list of (kind, source): kind is 'markdown', 'code' or 'solution'."""
    cells, kind, lines = [], None, []
    for line in text.splitlines():
        header = re.fullmatch(r"# %%(?: \[(\w+)\])?\s*", line)
        if header:
            if kind is not None:
                cells.append((kind, lines))
            kind, lines = header.group(1) or "code", []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append((kind, lines))
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        if kind == "markdown":
            lines = [re.sub(r"^# ?", "", line) for line in lines]
        if kind not in ("markdown", "code", "solution"):
            raise ValueError(f"unknown cell kind [{kind}]: use [markdown], [solution] or none (code)")
        out.append((kind, "\n".join(lines)))
    return out


def repository_url():
    """`[project.urls] Repository` of pyproject.toml: https://github.com/OWNER/NAME."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.urls]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^Repository\s*=\s*"([^"]+)"', section, re.M).group(1)


def install_cell(repo):
    return f"""try:  # on Colab (or anywhere without the library), install it from GitHub
    import crossmodal
except ImportError:
    %pip install -q "crossmodal @ git+{repo}"
    try:
        import crossmodal
    except ImportError:
        raise ImportError("crossmodal is not installed and could not be installed from {repo} "
                          "(no network?). Clone or upload the repository, run `pip install -e .` in its folder, "
                          "then restart the kernel.") from None"""


def running_time(seconds, capability):
    """The line under a notebook's title that says how long it takes, from the build's own measurement."""
    minutes = round(seconds / 60)
    cpu = {"AVX512": "AVX-512", "AVX2": "AVX2"}.get(capability, capability)
    took = "in under a minute" if minutes < 1 else f"in about {minutes} minute{'s' * (minutes != 1)}"
    return (f"*Runs top to bottom {took} on a 2-core CPU, no GPU needed "
            f"({seconds:.0f} s when it was stored, on an {cpu} CPU; an older CPU may take up to twice as long).*")


def cells(source, timing=None):
    """The notebook's cells: the source's, with the Colab badge and the install cell added at the top, and the
    running-time line under the title when it is known (`timing`, from running_time)."""
    parsed, repo = parse(source.read_text()), repository_url()
    if not parsed or parsed[0][0] != "markdown":
        raise ValueError(f"{source.name}: the first cell should be markdown (the notebook's title)")
    owner_name = repo.removeprefix("https://github.com/")
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"(https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/{source.stem}.ipynb)")
    heading, _, rest = parsed[0][1].partition("\n")
    title = ("markdown", f"{badge}\n\n{heading}\n\n{timing}\n{rest}" if timing else f"{badge}\n\n{parsed[0][1]}")
    return [title, ("code", install_cell(repo)), *parsed[1:]]


def stored_cells(source, stored):
    """The cells `source` builds, with the running time the stored notebook measured when it was built."""
    built = stored.metadata.get("crossmodal", {})
    return cells(source, running_time(built["build_seconds"], built["cpu"]) if built else None)


def notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"},
                   "colab": {"provenance": [], "toc_visible": True}}
    for i, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "solution":  # collapsed in Jupyter (source_hidden) and in Colab (a form cell)
                cell.metadata = {"jupyter": {"source_hidden": True}, "cellView": "form"}
        cell.id = f"cell-{i:02d}"  # stable ids keep diffs small
        nb.cells.append(cell)
    return nb


def build(source):
    nb = notebook(cells(source))
    start = time.perf_counter()
    target = NOTEBOOKS / f"{source.stem}.ipynb"
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}},
                       store_widget_state=True, record_timing=True).execute()
    except Exception:
        nbformat.write(nb, target)  # keep what ran, to look at the failing cell
        raise
    seconds = time.perf_counter() - start
    nb.metadata["crossmodal"] = {"build_seconds": round(seconds), "cpu": torch.backends.cpu.get_cpu_capability()}
    nb.cells[0].source = cells(source, running_time(seconds, nb.metadata["crossmodal"]["cpu"]))[0][1]
    slow = []
    for cell in nb.cells:  # report the slow cells, then drop the timestamps (they would change every build)
        stamps = cell.metadata.pop("execution", None)
        if stamps and "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            took = _seconds(stamps["shell.execute_reply"]) - _seconds(stamps["iopub.execute_input"])
            if took >= 2:
                slow.append(f"cell {cell.execution_count} {took:.0f} s")
    nbformat.write(nb, target)
    print(f"{target.name}: executed in {seconds:.0f} s, {target.stat().st_size / 1e6:.2f} MB; slow cells: {slow}")


def update_prose(source):
    """Copy the markdown cells of `source` into its stored notebook, outputs untouched.

    For prose-only edits: running a notebook takes minutes, and its outputs cannot depend on its
    markdown. Refuses when a code cell differs from the source, which needs a real build.
    """
    target = NOTEBOOKS / f"{source.stem}.ipynb"
    stored = nbformat.read(target, as_version=4)
    wanted = stored_cells(source, stored)
    kinds = [("markdown" if kind == "markdown" else "code") for kind, _ in wanted]
    if kinds != [cell.cell_type for cell in stored.cells] or any(
            cell.source != text for cell, (kind, text) in zip(stored.cells, wanted) if kind != "markdown"):
        sys.exit(f"{target.name}: its code differs from {source.name}; build it instead (without --prose)")
    changed = 0
    for cell, (kind, text) in zip(stored.cells, wanted):
        if kind == "markdown" and cell.source != text:
            cell.source, changed = text, changed + 1
    nbformat.write(stored, target)
    print(f"{target.name}: {changed} markdown cells updated, nothing run")


def _seconds(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main(prefixes):
    prose = "--prose" in prefixes
    prefixes = [p for p in prefixes if p != "--prose"]
    sources = sorted(p for p in HERE.glob("[0-9][0-9]_*.py") if not prefixes or p.name.startswith(tuple(prefixes)))
    if not sources:
        sys.exit(f"no notebook sources match {prefixes} in {HERE}")
    for source in sources:
        update_prose(source) if prose else build(source)


if __name__ == "__main__":
    main(sys.argv[1:])
