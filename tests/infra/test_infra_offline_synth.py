"""``make synth`` needs no network and no AWS credentials (issue 5's "Done when"), shown rather than
assumed: the Makefile's synth command line for one example configuration, run in a new user and
network namespace (``unshare -rn``: no interface but a loopback that is down) with every ``AWS_``
variable removed and ``HOME`` an empty directory (no ~/.aws, no CDK or npm cache). Installing
(``make install``: pip, ``npm ci``) needs the network; the synth itself does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"
CONFIG = "single-account"
SYNTH_TIMEOUT = 300  # about 15-50 s here, depending on the machine's load

# No route out: a TCP connection and a DNS lookup both fail at once inside the namespace.
NETWORK_PROBE = """
import socket, sys
for what, attempt in (
    ("tcp 1.1.1.1:443", lambda: socket.create_connection(("1.1.1.1", 443), timeout=5)),
    ("dns sts.amazonaws.com", lambda: socket.getaddrinfo("sts.amazonaws.com", 443)),
):
    try:
        attempt()
    except OSError:
        continue
    sys.exit(f"{what}: reachable inside the namespace")
"""


def _namespace_problem() -> str | None:
    """Why ``unshare -rn`` cannot run here (no util-linux, user namespaces disabled), or None."""
    if shutil.which("unshare") is None:
        return "no unshare command (util-linux) on this machine"
    try:
        proc = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare -rn true: {e}"
    if proc.returncode != 0:
        return (
            f"unshare -rn true failed (unprivileged user namespaces disabled?): {proc.stderr.strip()[:300]}"
        )
    return None


def _no_credentials_env(home: Path) -> dict[str, str]:
    """This process's environment without any AWS setting or CDK account, ``HOME`` empty, plus
    what the Makefile's synth recipe sets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
    }
    env.update(
        HOME=str(home),
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="18,20",
    )
    return env


def test_the_command_line_is_make_synth_s() -> None:
    """The arguments below are the Makefile's: a change there must show up here."""
    recipe = (REPO / "Makefile").read_text().split("\nsynth:", 1)[1].split("\n\n", 1)[0]
    assert "node_modules/.bin/cdk synth --quiet --no-notices -c config=infra/config/$$c.json" in recipe
    assert "-c allow_placeholder_key=true -o cdk.out/$$c" in recipe
    assert "env -u AWS_PROFILE AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_CLI_TELEMETRY=true" in recipe


def test_make_synth_needs_no_network_and_no_credentials(tmp_path: Path) -> None:
    problem = _namespace_problem()
    if problem:
        pytest.skip(f"cannot cut the network off: {problem}")
    if not CDK_CLI.exists():
        pytest.skip("no node_modules/.bin/cdk: run make install first (npm ci needs the network)")
    home = tmp_path / "home"
    home.mkdir()
    env = _no_credentials_env(home)
    assert not [k for k in env if k.startswith("AWS_") and k != "AWS_EC2_METADATA_DISABLED"]

    probe = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", NETWORK_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, f"the namespace is not offline: {probe.stderr[-500:]}"

    out = tmp_path / "cdk.out" / CONFIG
    cmd = ["unshare", "-rn", str(CDK_CLI.relative_to(REPO)), "synth", "--quiet", "--no-notices"]
    cmd += ["-c", f"config=infra/config/{CONFIG}.json", "-c", "allow_placeholder_key=true", "-o", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=SYNTH_TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed offline:\n{(proc.stdout + proc.stderr)[-4000:]}"

    manifest = json.loads((out / "manifest.json").read_text())
    assert "missing" not in manifest, f"synth wanted context lookups: {manifest['missing']}"
    template = json.loads((out / "ddblake-example-ddb-table.template.json").read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::DynamoDB::Table", "AWS::KinesisFirehose::DeliveryStream", "AWS::Glue::Job"} <= kinds
