"""What the stacks deploy as code: the transform bundle, the Glue script, the apply image context."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_templates import resources_of_type

from ddblake.gluejob import library_files
from ddblake_infra.assets import (
    ALLOWED_THIRD_PARTY,
    SRC,
    TRANSFORM_HANDLER,
    import_closure,
    stage_apply_image,
    stage_transform,
)
from ddblake_infra.config_reader import InfraConfigError

REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "tests" / "events" / "firehose-kinesis-event.json"

# The bundle is for the transform only: none of these belong in it.
NOT_IN_BUNDLE = (
    "ddblake/cli/",
    "ddblake/lake/",
    "ddblake/capture/",
    "ddblake/local/",
    "ddblake/load/",
    "ddblake/codec/",
)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_transform_closure_is_small_and_stdlib_only() -> None:
    files, external = import_closure()
    rel = {p.relative_to(SRC).as_posix() for p in files}
    assert "ddblake/aws/firehose_transform.py" in rel
    assert {"ddblake/__init__.py", "ddblake/aws/__init__.py", "ddblake/errors.py"} <= rel
    assert not [f for f in rel if f.startswith(NOT_IN_BUNDLE)], rel
    third_party = {m for m in external if m not in sys.stdlib_module_names}
    assert third_party <= ALLOWED_THIRD_PARTY


def test_transform_bundle_runs_alone(tmp_path: Path) -> None:
    """The staged bundle (with Powertools, as the layer provides it) imports and answers a real
    Firehose event in a bare interpreter: no site-packages, no aws_cdk, no pyarrow, no ddblake
    from src/."""
    bundle = stage_transform(bundle_powertools=True)
    assert not [f for f in _files(bundle) if f.startswith(NOT_IN_BUNDLE)]
    script = tmp_path / "invoke.py"
    script.write_text(
        f"""
import json, sys
sys.path.insert(0, {str(bundle)!r})
import ddblake.aws.firehose_transform as m
assert m.__file__.startswith({str(bundle)!r}), m.__file__

class Context:
    function_name = "ddblake-example-ddb-table-transform"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:111111111111:function:x"
    aws_request_id = "req-1"
    def get_remaining_time_in_millis(self): return 60000

event = json.load(open({str(EVENT)!r}))
out = m.handler(event, Context())
bad = sorted(n for n in sys.modules if n.split(".")[0] in ("aws_cdk", "jsii", "pyarrow", "boto3", "botocore"))
print(json.dumps({{"records": out["records"], "bad": bad}}))
"""
    )
    env = {"POWERTOOLS_METRICS_NAMESPACE": "ddblake", "POWERTOOLS_SERVICE_NAME": "t", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    event = json.loads(EVENT.read_text())
    assert [r["recordId"] for r in result["records"]] == [r["recordId"] for r in event["records"]]
    assert {r["result"] for r in result["records"]} <= {"Ok", "ProcessingFailed"}
    assert any(r["result"] == "Ok" for r in result["records"])
    assert result["bad"] == []


def test_transform_bundle_refuses_heavy_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddblake_infra.assets as assets

    real = assets.import_closure

    def with_pyarrow() -> tuple[list[Path], set[str]]:
        files, external = real()
        return files, external | {"pyarrow"}

    monkeypatch.setattr(assets, "import_closure", with_pyarrow)
    with pytest.raises(InfraConfigError, match=r"imports pyarrow, which the Lambda runtime does not have"):
        assets.stage_transform(bundle_powertools=False)


def test_glue_library_refuses_an_import_glue_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddblake_infra.assets as assets

    real = assets.import_closure

    def reaching_out(root: str = assets.GLUE_MODULE) -> tuple[list[Path], set[str]]:
        files, external = real(root)
        return [*files, SRC / "ddblake" / "load" / "rows.py"], external | {"pyarrow"}

    monkeypatch.setattr(assets, "import_closure", reaching_out)
    with pytest.raises(InfraConfigError, match=r"imports ddblake/load/rows\.py, pyarrow, which the Glue job"):
        assets.stage_glue_library()


def test_apply_image_context() -> None:
    ctx = stage_apply_image()
    files = _files(ctx)
    assert {"Dockerfile", "pyproject.toml", "README.md", "constraints.txt"} <= files
    assert "src/ddblake/aws/apply_handler.py" in files
    assert not [f for f in files if f.startswith(("tests/", ".venv/", "node_modules/", "infra/", "cdk.out/"))]
    assert not [f for f in files if "__pycache__" in f]
    dockerfile = (ctx / "Dockerfile").read_text()
    assert 'CMD ["ddblake.aws.apply_handler.handler"]' in dockerfile
    assert "def handler(" in (SRC / "ddblake/aws/apply_handler.py").read_text()


def _asset_dir(assembly: Path, key: str) -> Path:
    return assembly / f"asset.{key.split('.')[0]}"


@pytest.mark.parametrize("config", ["single-account", "cross-account"])
def test_synthesized_assets(assemblies: dict[str, Path], templates: dict[str, Any], config: str) -> None:
    assembly = assemblies[config]
    stacks = {k: v for k, v in templates.items() if k.startswith(config + "/")}
    functions = [r for t in stacks.values() for r in resources_of_type(t, "AWS::Lambda::Function")]
    transform = [f for f in functions if f["Properties"].get("Handler") == TRANSFORM_HANDLER]
    assert len(transform) == 1
    code_dir = _asset_dir(assembly, transform[0]["Properties"]["Code"]["S3Key"])
    files, _ = import_closure()
    assert _files(code_dir) == {p.relative_to(SRC).as_posix() for p in files}

    jobs = [r for t in stacks.values() for r in resources_of_type(t, "AWS::Glue::Job")]
    assert len(jobs) == 1
    script_key = jobs[0]["Properties"]["Command"]["ScriptLocation"].rsplit("/", 1)[1]
    staged = assembly / f"asset.{script_key}"
    assert staged.read_bytes() == (SRC / "ddblake/load/glue_job.py").read_bytes()
    library = jobs[0]["Properties"]["DefaultArguments"]["--extra-py-files"]
    assert isinstance(library, str) and library.endswith(".zip"), "Glue takes a .zip of packages"
    library_dir = _asset_dir(assembly, library.rsplit("/", 1)[1])
    assert _files(library_dir) == set(library_files()), "the zip holds the package the script imports"
    for name, path in library_files().items():
        assert (library_dir / name).read_bytes() == path.read_bytes()

    images = [f for f in functions if f["Properties"].get("PackageType") == "Image"]
    assert len(images) == 1
    manifest = json.loads((assembly / "manifest.json").read_text())
    asset_manifests = [
        json.loads((assembly / a["properties"]["file"]).read_text())
        for a in manifest["artifacts"].values()
        if a["type"] == "cdk:asset-manifest"
    ]
    docker = [d for m in asset_manifests for d in m.get("dockerImages", {}).values()]
    assert len(docker) == 1
    assert docker[0]["source"]["platform"] == "linux/arm64"
    context = assembly / docker[0]["source"]["directory"]
    assert (context / "Dockerfile").is_file() and (context / "src/ddblake/aws/apply_handler.py").is_file()
