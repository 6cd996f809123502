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


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"pip install -e \"\.\[dev\]\" && (python -m pytest[^\n`]*)", readme).group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_library_stays_small():
    lines = sum(len(p.read_text().splitlines()) for p in (ROOT / "crossmodal").rglob("*.py"))
    assert lines <= 1800, f"the library has {lines} lines; it should read in one sitting"


def test_license_is_mit():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert pyproject()["project"]["license"] == "MIT"
