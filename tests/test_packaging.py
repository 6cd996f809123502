"""The project's own files agree with each other."""

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_names(requirements):
    return {re.split(r"[<>=!~\[ ;]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = pyproject()["project"]
    wanted = requirement_names(project["dependencies"] + project["optional-dependencies"]["dev"])
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = requirement_names(re.findall(r'^\s+- "?([A-Za-z0-9_.\-][^\n#"]*)', pip_section, flags=re.M))
    listed.discard("-e")
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"


def test_a_learner_installs_the_notebooks_extra_without_test_tools():
    extras = pyproject()["project"]["optional-dependencies"]
    notebooks, dev = requirement_names(extras["notebooks"]), requirement_names(extras["dev"])
    assert "jupyterlab" in notebooks and notebooks <= dev  # dev adds the test tools to the learner's set-up
    assert not notebooks & {"pytest", "nbval", "playwright", "ruff"}
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[notebooks]"' in readme and "python -m venv" in readme and "--allow-root" in readme
    assert "download.pytorch.org/whl/cpu" in readme


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"pip install -e \"\.\[dev\]\" && (python -m pytest[^\n`]*)", readme).group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text()


MAX_LINES_PER_FILE = 350  # a file reads in one sitting; the library may grow, one readable file at a time


def library_files():
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "crossmodal").rglob("*.py"))


def test_each_library_file_stays_readable():
    long = {f: n for f in library_files() if (n := len((ROOT / f).read_text().splitlines())) > MAX_LINES_PER_FILE}
    assert not long, f"split these by job (over {MAX_LINES_PER_FILE} lines): {long}"


def readme_library_table():
    """The file column of the README's 'The library' table, in its order (a folder row stands for its files).

    A row may name several files (`nn/serialization.py`, `nn/auto.py`), each relative to crossmodal/ unless it
    says crossmodal/ itself; a bold row (**`crossmodal/nn/`**) heads a folder's rows and stands for its __init__.py
    (the package's face), not for its other files."""
    section = (ROOT / "README.md").read_text().split("## The library", 1)[1].split("\n## ", 1)[0]
    listed = []
    for cell in re.findall(r"^\| ([^|]+?) \|", section, flags=re.M):
        if cell.startswith("**"):
            listed += [f"{folder}__init__.py" for folder in re.findall(r"`(crossmodal/[^`]+/)`", cell)]
            continue
        listed += [name if name.startswith("crossmodal/") else f"crossmodal/{name}"
                   for name in re.findall(r"`([^`]+)`", cell)]
    return listed


def test_readme_lists_every_library_file_in_reading_order():
    listed = readme_library_table()
    folders = [row for row in listed if row.endswith("/")]
    covered = {f for f in library_files() if f in listed or f.startswith(tuple(folders))}
    missing = sorted(set(library_files()) - covered - {"crossmodal/__init__.py"})
    assert not missing, f"add to the README's library table: {missing}"
    stale = [row for row in listed if not (ROOT / row).exists()]
    assert not stale, f"the README's library table names files that do not exist: {stale}"
    assert len(listed) == len(set(listed)), "a file is listed twice"


def test_license_is_mit():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert pyproject()["project"]["license"] == "MIT"
    # a license given as a string (an SPDX expression, PEP 639) is read from setuptools 77 on; older ones refuse it
    (setuptools,) = [r for r in pyproject()["build-system"]["requires"] if requirement_names([r]) == {"setuptools"}]
    assert tuple(int(n) for n in re.search(r">=\s*([\d.]+)", setuptools).group(1).split(".")) >= (77,)


def test_the_files_pyproject_names_exist():
    named = re.findall(r"crossmodal/[\w/]+\.\w+", (ROOT / "pyproject.toml").read_text())
    assert named and not [f for f in named if not (ROOT / f).exists()]


def test_the_quickstarts_venv_is_ignored_and_the_optional_wheel_line_says_what_to_do_without_it():
    """Issue #31: the Quickstart's `.venv/` must not show up as thousands of untracked files, and a learner whose
    network cannot reach PyTorch's own index must be told to leave that line out."""
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert ".venv/" in ignored
    readme = (ROOT / "README.md").read_text()
    assert "cannot be reached" in readme and "installs PyTorch from PyPI" in readme
