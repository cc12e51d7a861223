"""Asset staging: exactly the files each deployed artifact needs, copied into a fresh directory.

* The transform Lambda gets the import closure of ``ddblake.aws.firehose_transform`` (found by
  reading the source's imports, not by importing it) and nothing else: no CLI, no pyarrow code, no
  aws_cdk. A third-party import other than Powertools fails synth with the module that made it.
* The apply image's build context: pyproject.toml, README.md, constraints.txt, ``src/ddblake`` and
  ``infra/apply_image/Dockerfile`` (handler ``ddblake.aws.apply_handler.handler``). Synth only stages
  it; ``cdk deploy`` builds it.
* The Glue job: the script at ``load.script``, and beside it (its ``--extra-py-files`` zip) the
  package it imports, ``ddblake.gluejob`` with ``ddblake/__init__.py``
  (``ddblake.gluejob.library_files``): standard library at module level; boto3, awsglue and
  pyspark inside functions, which Glue has.

CDK hashes asset contents (not paths or times), so staging into temporary directories keeps
templates byte-identical from one synth to the next.
"""

from __future__ import annotations

import ast
import atexit
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from ddblake_infra.config import REPO_ROOT
from ddblake_infra.config_reader import InfraConfigError
from ddblake_infra.config_sections import missing_script_problem

SRC: Final = REPO_ROOT / "src"
PACKAGE: Final = SRC / "ddblake"
APPLY_IMAGE: Final = REPO_ROOT / "infra" / "apply_image"
TRANSFORM_MODULE: Final = "ddblake.aws.firehose_transform"
TRANSFORM_HANDLER: Final = f"{TRANSFORM_MODULE}.handler"
ALLOWED_THIRD_PARTY: Final = frozenset({"aws_lambda_powertools"})
GLUE_MODULE: Final = "ddblake.gluejob.job"
GLUE_THIRD_PARTY: Final = frozenset({"boto3", "awsglue", "pyspark"})
"""What a Glue 4.0/5.0/5.1 job has beside the standard library (imported only inside functions)."""
POWERTOOLS_RUNTIME_DEPS: Final = ("aws_lambda_powertools", "jmespath", "typing_extensions")
_IGNORE: Final = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")

_staging_roots: list[Path] = []


def _fresh_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"ddblake-{prefix}-"))
    if not _staging_roots:
        atexit.register(_cleanup)
    _staging_roots.append(path)
    return path


def _cleanup() -> None:
    for path in _staging_roots:
        shutil.rmtree(path, ignore_errors=True)


def _module_file(module: str) -> Path | None:
    """``src/ddblake/a/b.py`` or ``src/ddblake/a/b/__init__.py`` for ``ddblake.a.b``."""
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Modules imported by a file (``if TYPE_CHECKING:`` blocks skipped: they never run)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base_parts = parts if is_package else parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # maybe submodules
        stack.extend(ast.iter_child_nodes(node))


def import_closure(root_module: str = TRANSFORM_MODULE) -> tuple[list[Path], set[str]]:
    """The ddblake files ``root_module`` needs (itself, what it imports, every parent package's
    ``__init__``) and the other top-level modules they import.

    Raises:
        InfraConfigError: a ddblake module in the closure is missing.
    """
    files: set[Path] = set()
    external: set[str] = set()
    todo = [root_module]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        for i in range(1, len(parts)):  # parent packages run their __init__ on import
            todo.append(".".join(parts[:i]))
        path = _module_file(module)
        if path is None:
            if module == root_module:
                raise InfraConfigError(f"{root_module}: no such module under {SRC}")
            continue  # ``from pkg import name``: name was not a submodule
        files.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imports(tree, module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top == "ddblake":
                todo.append(name)
            elif top and top != "__future__":
                external.add(top)
    return sorted(files), external


def stage_transform(*, bundle_powertools: bool) -> Path:
    """A directory holding exactly what ``ddblake.aws.firehose_transform.handler`` imports.

    Raises:
        InfraConfigError: the handler's closure imports a third-party module other than Powertools
            (it would fail at cold start on Lambda), or Powertools is to be bundled but is not
            installed here.
    """
    files, external = import_closure()
    third_party = sorted(
        m for m in external if m not in sys.stdlib_module_names and m not in ALLOWED_THIRD_PARTY
    )
    if third_party:
        raise InfraConfigError(
            f"{TRANSFORM_MODULE} (through its ddblake imports) imports {', '.join(third_party)}, which the "
            "Lambda runtime does not have; the transform may import only the standard library, "
            "aws_lambda_powertools and ddblake modules that do the same"
        )
    out = _fresh_dir("transform")
    for path in files:
        dest = out / path.relative_to(SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    if bundle_powertools:
        for name in POWERTOOLS_RUNTIME_DEPS:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                raise InfraConfigError(
                    f"transform.powertools is 'bundle' but {name} is not installed in this environment "
                    "(make install); or use 'layer'"
                )
            origin = Path(spec.origin)
            if origin.name == "__init__.py":
                shutil.copytree(origin.parent, out / name, ignore=_IGNORE)
            else:
                shutil.copyfile(origin, out / origin.name)
    return out


def stage_apply_image() -> Path:
    """The build context of the apply container image (built by ``cdk deploy``, not by synth)."""
    out = _fresh_dir("apply-image")
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copyfile(REPO_ROOT / name, out / name)
    shutil.copytree(PACKAGE, out / "src" / "ddblake", ignore=_IGNORE)
    shutil.copyfile(APPLY_IMAGE / "Dockerfile", out / "Dockerfile")
    return out


def stage_glue_library() -> Path:
    """A directory holding the Glue job's package, zipped by CDK as its ``--extra-py-files``.

    Raises:
        InfraConfigError: the job's imports reach a ddblake module outside the shipped files (Glue
            would fail with ModuleNotFoundError), or a third-party module Glue does not have.
    """
    from ddblake.gluejob import library_files  # the runtime package: standard library only

    shipped = library_files()
    files, external = import_closure(GLUE_MODULE)
    outside = sorted(
        p.relative_to(SRC).as_posix() for p in files if p.relative_to(SRC).as_posix() not in shipped
    )
    allowed = GLUE_THIRD_PARTY | sys.stdlib_module_names
    third_party = sorted(m for m in external if m not in allowed)
    if outside or third_party:
        raise InfraConfigError(
            f"{GLUE_MODULE} imports {', '.join(outside + third_party)}, which the Glue job does not have: "
            "ddblake.gluejob may import only the standard library, its own modules and (inside "
            f"functions) {', '.join(sorted(GLUE_THIRD_PARTY))}"
        )
    out = _fresh_dir("glue-library")
    for name, path in shipped.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / name)
    return out


def glue_script(path: Path, config_file: Path | str) -> Path:
    """The Glue job script, checked to exist (``load_settings`` checks it too; this catches a script
    removed between reading the configuration and staging the asset).

    Raises:
        InfraConfigError: the script is missing; the message names the configuration file and key.
    """
    if not path.is_file():
        raise InfraConfigError(missing_script_message(config_file, path))
    return path


def missing_script_message(config_file: Path | str, path: Path) -> str:
    """One line for a ``load.script`` that does not exist: file, key, and what to write instead."""
    try:
        shown = path.relative_to(REPO_ROOT)
    except ValueError:
        shown = path
    return f"{config_file}: load.script: {missing_script_problem(shown)}"
