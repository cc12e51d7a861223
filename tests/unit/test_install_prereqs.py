"""The install path: ``tools/check-prereqs.sh`` and the Makefile's choice of Python, venv and order.

Each test runs the real script (or ``make`` on a copy of the real Makefile) in a temporary folder
whose PATH holds fake ``java``, ``python3.x``, ``node`` and ``npm`` scripts and links to the few
system tools the recipes use, so what this machine has installed does not matter and nothing is
installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
TOOLS = ("bash", "sh", "sed", "grep", "head", "touch", "rm", "mkdir", "env", "cat")


def _bin(tmp_path: Path, **scripts: str) -> Path:
    """A PATH folder with links to the system tools the scripts use and the given fake commands."""
    folder = tmp_path / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found and not (folder / tool).exists():
            (folder / tool).symlink_to(found)
    for name, body in scripts.items():
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return folder


def _java(says: str) -> str:
    """A fake ``java`` whose ``-version`` prints ``says`` on stderr, as the real one does."""
    return f"cat >&2 <<'EOF'\n{says}\nEOF"


def _check(tmp_path: Path, path: Path, java_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(path), "HOME": str(tmp_path)}
    if java_home is not None:
        env["JAVA_HOME"] = str(java_home)
    return subprocess.run(
        [str(REPO / "tools" / "check-prereqs.sh"), "java"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


# --- tools/check-prereqs.sh java -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("says", "ok"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', True),
        ('openjdk version "21" 2023-09-19', True),
        ('Picked up JAVA_TOOL_OPTIONS: -Dfile.encoding=UTF-8\nopenjdk version "21.0.2" 2024-01-16', True),
        ('Picked up JAVA_TOOL_OPTIONS: -Dfile.encoding=UTF-8\nopenjdk version "11.0.22" 2024-01-16', False),
        ('java version "1.8.0_392"', False),
    ],
)
def test_the_java_version_is_read_from_its_version_line(tmp_path: Path, says: str, ok: bool) -> None:
    result = _check(tmp_path, _bin(tmp_path, java=_java(says)))
    assert (result.returncode == 0) is ok, result.stderr
    if not ok:
        major = "8" if "1.8" in says else "11"
        assert f"'java' is version {major}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreadable_java_version_is_a_failure(tmp_path: Path) -> None:
    result = _check(tmp_path, _bin(tmp_path, java=_java("Error: could not create the Java Virtual Machine.")))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "the version of 'java' could not be read" in line and "could not create the Java" in line
    assert len(line.splitlines()) == 1


def test_java_home_is_the_java_checked_as_ddblake_runs_it(tmp_path: Path) -> None:
    home = tmp_path / "jdk11"
    _bin(home, java=_java('openjdk version "11.0.22" 2024-01-16'))  # $JAVA_HOME/bin/java
    on_path = _bin(tmp_path, java=_java('openjdk version "21.0.2" 2024-01-16'))
    result = _check(tmp_path, on_path, java_home=home)
    assert result.returncode == 1
    assert f"'{home}/bin/java' is version 11" in result.stderr

    without = tmp_path / "no-java"
    without.mkdir()
    for tool in TOOLS:  # no java on PATH at all: JAVA_HOME's is enough
        (without / tool).symlink_to(on_path / tool)
    modern = tmp_path / "jdk21"
    _bin(modern, java=_java('openjdk version "21.0.2" 2024-01-16'))
    assert _check(tmp_path, without, java_home=modern).returncode == 0
    missing = _check(tmp_path, without, java_home=tmp_path / "nowhere")
    assert missing.returncode == 1 and "'java' was not found" in missing.stderr


# --- the Makefile ---------------------------------------------------------------------------------------

needs_make = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")
GOOD_PYTHON = "exit 0"  # passes every `-c` check the Makefile and check-prereqs.sh make
OLD_PYTHON = """case "$*" in *platform*) echo 3.9.18 ;; *) exit 1 ;; esac"""
RECORD = 'echo "$0 $*" >> "$RECORD"'


def _checkout(tmp_path: Path) -> Path:
    """The Makefile and check-prereqs.sh in an otherwise empty checkout."""
    root = tmp_path / "checkout"
    (root / "tools").mkdir(parents=True)
    shutil.copy2(REPO / "Makefile", root / "Makefile")
    shutil.copy2(REPO / "tools" / "check-prereqs.sh", root / "tools" / "check-prereqs.sh")
    for name in ("pyproject.toml", "constraints.txt", "package.json", "package-lock.json"):
        (root / name).write_text("")
    return root


def _make(
    tmp_path: Path, root: Path, path: Path, *argv: str, python: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    env = {"PATH": str(path), "HOME": str(tmp_path), "RECORD": str(tmp_path / "ran")}
    if python is not None:
        env["PYTHON"] = python
    return subprocess.run(
        [MAKE, "--no-print-directory", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
        check=False,
    )


def _ran(tmp_path: Path) -> str:
    record = tmp_path / "ran"
    return record.read_text() if record.exists() else ""


@needs_make
def test_make_picks_the_first_python_of_at_least_3_11(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    show = "--eval=show-python: ; @echo $(PYTHON)"
    path = _bin(tmp_path, python3=OLD_PYTHON, **{"python3.13": GOOD_PYTHON, "python3.12": GOOD_PYTHON})
    assert _make(tmp_path, root, path, show, "show-python").stdout.strip() == "python3.13"
    chosen = _make(tmp_path, root, path, show, "show-python", python="python3.12")
    assert chosen.stdout.strip() == "python3.12", "PYTHON=... still decides"

    (path / "python3.13").unlink()
    (path / "python3.12").unlink()
    assert _make(tmp_path, root, path, show, "show-python").stdout.strip() == "python3", "none: python3"
    refused = _make(tmp_path, root, path, "prereqs")
    assert refused.returncode != 0
    assert "Python 3.11+ is required but 'python3' is" in refused.stderr


@needs_make
def test_a_venv_of_an_older_python_is_reported_not_reused(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(f"#!/bin/sh\n{RECORD}\n{OLD_PYTHON}\n")
    (venv_bin / "python").chmod(0o755)
    path = _bin(tmp_path, python3=GOOD_PYTHON)
    result = _make(tmp_path, root, path, ".venv/.installed")
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[0]
    assert ".venv was made with Python 3.9.18 but ddblake needs 3.11+: run 'make clean'" in line
    assert "-m pip" not in _ran(tmp_path), "pip never ran in the old venv"


@needs_make
def test_npm_ci_does_not_enforce_the_packages_engines_field(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    path = _bin(tmp_path, node="echo 20", npm=f"{RECORD}\nmkdir -p node_modules")
    result = _make(tmp_path, root, path, "node_modules/.installed")
    assert result.returncode == 0, result.stderr
    assert "npm ci --engine-strict=false" in _ran(tmp_path)


@needs_make
@pytest.mark.parametrize("target", ["demo", "test"])
def test_make_demo_and_test_check_java_before_installing(tmp_path: Path, target: str) -> None:
    root = _checkout(tmp_path)
    path = _bin(tmp_path, python3=f"{RECORD}\n{GOOD_PYTHON}", node="echo 20", npm=RECORD)
    result = _make(tmp_path, root, path, target)
    assert result.returncode != 0
    assert "Java 17+ is required to run DynamoDB Local" in result.stderr
    ran = _ran(tmp_path)
    assert "-m venv" not in ran and "npm" not in ran, f"installed before the Java check: {ran}"
    assert not (root / ".venv").exists() and not (root / "node_modules").exists()
