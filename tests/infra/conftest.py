"""Fixtures for the infrastructure tests (marked ``infra``; they run in ``make test``).

Synthesizing a CDK app goes through jsii (a Node.js process) and takes tens of seconds, so the two
example configurations are synthesized once per test run, by whichever pytest-xdist worker gets
there first, with the pinned CDK CLI exactly as ``make synth`` runs it: offline-style environment,
no AWS credentials, no ~/.aws, ``-c allow_placeholder_key=true`` for the cross-account example's
all-zero lake key. The other worker waits on a file lock and reads the same cloud assemblies.
Everything else reads the JSON files.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("aws_cdk") is None or importlib.util.find_spec("cdk_nag") is None:
    raise pytest.UsageError(
        "tests/infra need the 'infra' extra (aws-cdk-lib, cdk-nag, cfn-lint): run make test, or "
        ".venv/bin/pip install -c constraints.txt -e '.[dev,infra]'"
    )

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

CONFIGS = ("single-account", "cross-account")
CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"
SYNTH_TIMEOUT = 600


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "infra: CDK app in infra/ (synth, cdk-nag, cfn-lint, IAM allow-list)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.infra)


def offline_env(home: Path) -> dict[str, str]:
    """The environment of ``make synth`` on a machine without AWS credentials or configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CDK_DEFAULT_ACCOUNT"}
    env.update(
        HOME=str(home),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="18,20",
    )
    return env


def _synth_one(name: str, out: Path, home: Path) -> dict[str, Any]:
    config = f"infra/config/{name}.json"
    target = out / name
    if CDK_CLI.exists():
        cmd = [str(CDK_CLI), "synth", "--quiet", "--no-notices", "-c", f"config={config}"]
        cmd += ["-c", "allow_placeholder_key=true", "-o", str(target)]  # as make synth
        env = offline_env(home)
    else:  # no npm install: run the app the way the CLI does
        cmd = [sys.executable, "infra/app.py"]
        env = offline_env(home) | {
            "CDK_OUTDIR": str(target),
            "CDK_CONTEXT_JSON": json.dumps({"config": config, "allow_placeholder_key": "true"}),
        }
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=SYNTH_TIMEOUT)
    return {
        "cmd": cmd,
        "rc": proc.returncode,
        "output": (proc.stdout + proc.stderr)[-6000:],
        "seconds": round(time.monotonic() - start, 1),
    }


def _shared_root(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"single-account": dir, "cross-account": dir}``: cloud assemblies of the example configs."""
    root = _shared_root(tmp_path_factory)
    out = root / "ddblake-infra-synth"
    done = out / "synth.json"
    with (root / "ddblake-infra-synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            out.mkdir(exist_ok=True)
            home = out / "home"
            home.mkdir(exist_ok=True)
            with ThreadPoolExecutor(len(CONFIGS)) as pool:
                results = dict(
                    zip(CONFIGS, pool.map(lambda c: _synth_one(c, out, home), CONFIGS), strict=True)
                )
            done.write_text(json.dumps(results, indent=2))
        results = json.loads(done.read_text())
    for name, result in results.items():
        if result["rc"] != 0:
            pytest.fail(
                f"synth of infra/config/{name}.json failed ({' '.join(result['cmd'])}):\n{result['output']}"
            )
    return {name: out / name for name in CONFIGS}


@pytest.fixture(scope="session")
def synth_results(assemblies: dict[str, Path]) -> dict[str, Any]:
    """What each synth printed and how long it took."""
    data: dict[str, Any] = json.loads((next(iter(assemblies.values())).parent / "synth.json").read_text())
    return data


def load_templates(assembly: Path) -> dict[str, dict[str, Any]]:
    """``{stack name: template}`` of a cloud assembly."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    out: dict[str, dict[str, Any]] = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            out[name] = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
    return out


@pytest.fixture(scope="session")
def templates(assemblies: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Every synthesized template, keyed ``<config>/<stack>``."""
    return {
        f"{config}/{stack}": template
        for config, assembly in assemblies.items()
        for stack, template in load_templates(assembly).items()
    }


@pytest.fixture(scope="session")
def stack_templates(templates: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """aws_cdk.assertions Templates: ``single``, ``producer``, ``consumer``."""
    from aws_cdk.assertions import Template

    yield {
        "single": Template.from_json(templates["single-account/ddblake-example-ddb-table"]),
        "producer": Template.from_json(templates["cross-account/ddblake-example-ddb-table-producer"]),
        "consumer": Template.from_json(templates["cross-account/ddblake-example-ddb-table-consumer"]),
    }
