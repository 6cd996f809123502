"""The stored notebooks are fit to publish: links, install cell, outputs, size.

`pytest --nbval notebooks/` re-runs each notebook and compares its outputs; these tests check what
nbval does not. The repository URL lives in one place, `[project.urls] Repository` in pyproject.toml;
every Colab badge, install cell and GitHub link in the notebooks and the README must agree with it.
Each check returns a list of problems, and `test_checks_catch_a_broken_notebook` feeds every check a
notebook broken on purpose, so none of them can pass vacuously.
"""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024

# A path on somebody's machine: Unix home and system folders, macOS home, a Windows drive.
MACHINE_PATH = re.compile(r"(?<![\w.:/])/(?:work|root|home|tmp|Users|usr|opt|var|mnt)/|\b[A-Z]:\\{1,2}[\w .-]+\\")
GITHUB_REPO = re.compile(  # a GitHub repository, as a plain link or through Colab: groups owner, name
    r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+)/([\w.-]+?)(?:\.git)?(?=[/\s\"')#?]|$)")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")  # base64 may spell '/tmp/' by chance


def repository_url():
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib

        url = tomllib.loads(text)["project"]["urls"]["Repository"]
    except ModuleNotFoundError:  # Python 3.10: read the one line
        section = text.split("[project.urls]", 1)[1].split("\n[", 1)[0]
        url = re.search(r'^Repository\s*=\s*"([^"]+)"', section, re.M).group(1)
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", url)
    assert match, f"[project.urls] Repository should be https://github.com/OWNER/NAME, got {url!r}"
    return url


def colab_url(repo, name):
    return f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/main/notebooks/{name}"


def output_texts(cell):
    """Every text a code cell shows: streams, errors and the non-image parts of rich outputs."""
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            yield out.text
        elif out.output_type == "error":
            yield "\n".join([out.ename, out.evalue, *out.traceback])
        else:
            for mime, data in out.get("data", {}).items():
                if mime not in IMAGE_TYPES:
                    yield data if isinstance(data, str) else json.dumps(data)


# ---- the checks: each returns a list of problems ---------------------------------------------------------


def badge_problems(nb, name, repo):
    first = nb.cells[0] if nb.cells else None
    want = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(repo, name)})"
    if first is None or first.cell_type != "markdown" or want not in first.source:
        return [f"the first cell should be markdown holding the Colab badge {want}"]
    return []


def install_cell_problems(nb, repo):
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code:
        return ["no code cells"]
    src = code[0].source
    problems = []
    if not re.search(r"^try:.*\n\s+import crossmodal\s*\nexcept ImportError:", src, re.M):
        problems.append("the first code cell should try `import crossmodal` and install it on ImportError")
    if f'%pip install -q "crossmodal @ git+{repo}"' not in src:
        problems.append(f'the first code cell should run %pip install -q "crossmodal @ git+{repo}"')
    return problems


def link_problems(text, repo, where):
    owner_name = repo.removeprefix("https://github.com/")
    return [f"{where}: {m.group(0)!r} points to {m.group(1)}/{m.group(2)}, not {owner_name}"
            for m in GITHUB_REPO.finditer(text) if f"{m.group(1)}/{m.group(2)}" != owner_name]


def machine_path_problems(nb):
    problems = []
    for i, cell in enumerate(nb.cells):
        for text in [cell.source, *output_texts(cell)]:
            for m in MACHINE_PATH.finditer(text):
                context = text[max(0, m.start() - 30) : m.end() + 30].replace("\n", " ")
                problems.append(f"cell {i}: a path of this machine {m.group(0)!r} in ...{context}...")
    return problems


def error_problems(nb):
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: stored error {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr" and "Traceback" in out.text:
                problems.append(f"cell {i}: a traceback on stderr")
    return problems


def execution_order_problems(nb):
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        return [f"execution counts {counts}: run the notebook top to bottom in a fresh kernel (1..{len(counts)})"]
    return []


def ignore_marker_problems(nb):
    """`# NBVAL_IGNORE_OUTPUT` alone on its line (else nbval ignores the marker), the reason on the next line."""
    problems = []
    for i, cell in enumerate(nb.cells):
        lines = cell.source.splitlines() if cell.cell_type == "code" else []
        for j, line in enumerate(lines):
            if "NBVAL_IGNORE_OUTPUT" not in line:
                continue
            if line.strip().lstrip("#").strip() != "NBVAL_IGNORE_OUTPUT":
                problems.append(f"cell {i}: nbval only sees a marker alone on its line, not {line.strip()!r}")
            after = lines[j + 1].strip() if j + 1 < len(lines) else ""
            if not (after.startswith("#") and after.strip("# ()")):
                problems.append(f"cell {i}: NBVAL_IGNORE_OUTPUT without a reason on the next line")
    return problems


def solution_problems(nb):
    """Exercise solutions are stored collapsed, out of the learner's way."""
    return [f"cell {i}: a solution cell that is not collapsed (metadata jupyter.source_hidden)"
            for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and cell.source.lstrip().lower().startswith("# solution")
            and not cell.metadata.get("jupyter", {}).get("source_hidden")]


def relative_link_problems(text, folder, where):
    """Markdown links to other files of the repository must lead somewhere."""
    problems = []
    for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)\s#]+)", text):
        if not (folder / target).exists():
            problems.append(f"{where}: the link {target!r} leads to no file")
    return problems


def structure_problems(nb):
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    problems = []
    if not any(re.search(r"^#+ .*(learn|goals)", s, re.M | re.I) for s in markdown[:3]):
        problems.append("the learning goals should open the notebook (a heading with 'learn' or 'goals')")
    if not nb.cells or nb.cells[-1].cell_type != "markdown" or not re.search(r"^#+ Summary", nb.cells[-1].source, re.M):
        problems.append("the notebook should end with a markdown '## Summary'")
    return problems


def notebook_problems(path, repo):
    nb = nbformat.read(path, as_version=4)
    problems = badge_problems(nb, path.name, repo) + install_cell_problems(nb, repo)
    for i, cell in enumerate(nb.cells):
        problems += link_problems(cell.source, repo, f"cell {i}")
        if cell.cell_type == "markdown":
            problems += relative_link_problems(cell.source, path.parent, f"cell {i}")
    problems += machine_path_problems(nb) + error_problems(nb) + execution_order_problems(nb)
    problems += ignore_marker_problems(nb) + solution_problems(nb) + structure_problems(nb)
    size = path.stat().st_size
    if size > MAX_BYTES:
        problems.append(f"{size / 1e6:.2f} MB: more than {MAX_BYTES / 1e6:.1f} MB (lower the figures' dpi or count)")
    return problems


# ---- the tests -------------------------------------------------------------------------------------------


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name}: name notebooks NN_topic.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_fit_to_publish(path):
    problems = notebook_problems(path, repository_url())
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def load_build_tool():
    spec = importlib.util.spec_from_file_location("build", ROOT / "tools" / "notebooks" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def source_problems(stored, wanted):
    """Where a stored notebook's cells differ from those its source builds: [(kind, text)] as build.cells()."""
    have = [(cell.cell_type, cell.source) for cell in stored.cells]
    want = [("markdown" if kind == "markdown" else "code", text) for kind, text in wanted]
    if len(have) != len(want):
        return [f"{len(have)} cells stored, {len(want)} in the source"]
    return [f"cell {i}: the stored {h[0]} cell differs from the source's {w[0]} cell"
            for i, (h, w) in enumerate(zip(have, want)) if h != w]


SOURCES = sorted((ROOT / "tools" / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_stored_notebook_is_built_from_its_source(source):
    """Edit the source, then `python tools/notebooks/build.py NN`: the stored notebook must be what it builds."""
    stored = ROOT / "notebooks" / f"{source.stem}.ipynb"
    assert stored.exists(), f"{source.name} has no notebook: run python tools/notebooks/build.py {source.stem[:2]}"
    notebook = nbformat.read(stored, as_version=4)
    problems = source_problems(notebook, load_build_tool().stored_cells(source, notebook))
    assert not problems, f"{stored.name} is stale; rebuild it from {source.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_says_at_its_top_how_long_it_takes(path):
    """Measured by the build that stored it (tools/notebooks/build.py), so the number is never typed by hand."""
    notebook = nbformat.read(path, as_version=4)
    built = notebook.metadata.get("crossmodal", {})
    assert "build_seconds" in built, f"{path.name}: rebuild it with tools/notebooks/build.py to measure its time"
    title = notebook.cells[0].source
    assert f"({built['build_seconds']:.0f} s when it was stored" in title and "Runs top to bottom" in title


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_each_notebook_cites_what_it_builds_on(source):
    text = source.read_text()
    assert "# ## References" in text, f"{source.name}: end with a '## References' list (papers and docs, linked)"
    references = text.split("# ## References", 1)[1]
    assert len(re.findall(r"\]\(https://", references)) >= 2, f"{source.name}: link the papers and docs it cites"


def test_every_notebook_has_a_source():
    assert {p.stem for p in NOTEBOOKS} == {p.stem for p in SOURCES}


def test_source_check_catches_an_edited_notebook():
    build = load_build_tool()
    wanted = build.cells(SOURCES[0])
    nb = build.notebook(wanted)
    assert source_problems(nb, wanted) == []
    nb.cells[3].source += "\nprint('edited by hand')"
    assert source_problems(nb, wanted) == [f"cell 3: the stored {nb.cells[3].cell_type} cell differs from the "
                                           f"source's {nb.cells[3].cell_type} cell"]
    nb.cells.pop()
    assert "cells stored" in source_problems(nb, wanted)[0]


def test_the_install_cell_says_what_to_do_when_the_install_fails(monkeypatch):
    """No network, or no such repository: %pip prints its error and returns, and the learner must then read what
    to do, not a bare ModuleNotFoundError. Run the generated cell with crossmodal missing and %pip doing nothing."""
    from IPython.core.inputtransformer2 import TransformerManager

    repo = repository_url()
    code = TransformerManager().transform_cell(load_build_tool().install_cell(repo))  # %pip -> run_line_magic
    magics = []
    shell = type("Shell", (), {"run_line_magic": lambda self, name, line: magics.append((name, line))})()
    monkeypatch.setitem(__import__("sys").modules, "crossmodal", None)  # `import crossmodal` now fails
    with pytest.raises(ImportError) as failure:
        exec(code, {"get_ipython": lambda: shell})
    assert magics == [("pip", f'install -q "crossmodal @ git+{repo}"')]
    message = str(failure.value)
    assert "Clone or upload the repository" in message and "pip install -e ." in message and repo in message
    assert failure.value.__cause__ is None and failure.value.__suppress_context__  # one message, no chained traceback


def test_readme_links_match_the_repository():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("no README.md yet")
    text, repo = readme.read_text(), repository_url()
    problems = link_problems(text, repo, "README.md") + relative_link_problems(text, ROOT, "README.md")
    for m in re.finditer(r"https://colab\.research\.google\.com/github/[^)\s\"']+", text):
        name = m.group(0).rsplit("/", 1)[1]
        if m.group(0) != colab_url(repo, name) or not (ROOT / "notebooks" / name).exists():
            problems.append(f"README.md: Colab link {m.group(0)} should be {colab_url(repo, name)}, of a notebook")
    assert not problems, "\n".join(problems)


def test_checks_catch_a_broken_notebook(tmp_path):
    """Every check above fails on a notebook that breaks its rule: none of them passes vacuously."""
    repo = "https://github.com/owner/project"
    good = nbformat.v4.new_notebook()
    good.cells = [
        nbformat.v4.new_markdown_cell(f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                                      f"({colab_url(repo, '01_x.ipynb')})\n# 01"),
        nbformat.v4.new_code_cell(f'try:\n    import crossmodal\nexcept ImportError:\n'
                                  f'    %pip install -q "crossmodal @ git+{repo}"', execution_count=1),
        nbformat.v4.new_markdown_cell("## What you will learn\n\nSee [02](02_y.ipynb)."),
        nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\n# (why: timing)\nprint(1)", execution_count=2,
                                  outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        nbformat.v4.new_markdown_cell("## Summary"),
    ]
    (tmp_path / "02_y.ipynb").write_text("{}")
    path = tmp_path / "01_x.ipynb"
    nbformat.write(good, path)
    assert notebook_problems(path, repo) == []

    def broken(change):
        nb = nbformat.reads(nbformat.writes(good), as_version=4)
        change(nb)
        nbformat.write(nb, path)
        return notebook_problems(path, repo)

    def set_source(i, text):
        return lambda nb: nb.cells[i].update(source=text)

    def add_output(out):
        return lambda nb: nb.cells[3].outputs.append(out)

    breakages = {  # what is broken: (how, words the report must contain)
        "badge to another notebook": (set_source(0, good.cells[0].source.replace("01_x", "02_y")), "Colab badge"),
        "badge to another repository": (set_source(0, good.cells[0].source.replace("owner/project", "me/fork")),
                                        "Colab badge"),
        "install from another repository": (set_source(1, good.cells[1].source.replace("owner/project", "me/fork")),
                                            "%pip install"),
        "no install cell": (set_source(1, "import crossmodal"), "try `import crossmodal`"),
        "a stale GitHub link": (set_source(2, "## What you will learn\nhttps://github.com/old/name/pulls"), "old/name"),
        "a dead relative link": (set_source(2, "## What you will learn\n[03](03_z.ipynb)"), "leads to no file"),
        "a path in the source": (set_source(3, "open('/work/data.csv')"), "'/work/'"),
        "a path in an output": (add_output(nbformat.v4.new_output("stream", text="saved to /home/ann/x.png\n")),
                                "'/home/'"),
        "a Windows path in an output": (add_output(nbformat.v4.new_output("stream", text="C:\\Users\\ann\n")),
                                        "a path of this machine"),
        "an error output": (add_output(nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])),
                            "stored error"),
        "counts out of order": (lambda nb: nb.cells[3].update(execution_count=5), "execution counts"),
        "a cell never run": (lambda nb: nb.cells[3].update(execution_count=None), "execution counts"),
        "ignored output without a reason": (set_source(3, "# NBVAL_IGNORE_OUTPUT\nprint(1)"), "without a reason"),
        "a marker nbval cannot see": (set_source(3, "# NBVAL_IGNORE_OUTPUT: timing\n# (why: timing)\nprint(1)"),
                                      "alone on its line"),
        "an open solution": (set_source(3, "# Solution (click to expand)\nx = 1"), "not collapsed"),
        "no learning goals": (set_source(2, "Some text."), "learning goals"),
        "no summary at the end": (set_source(4, "The end."), "Summary"),
        "too big": (lambda nb: nb.cells[3].outputs.append(
            nbformat.v4.new_output("display_data", data={"image/png": "A" * (MAX_BYTES + 1)})), "MB"),
    }
    for what, (change, words) in breakages.items():
        problems = broken(change)
        assert any(words in p for p in problems), f"no check noticed {what}: {problems}"
