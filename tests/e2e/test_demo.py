"""``ddblake demo`` as a user runs it: exit 0, the three reference changes in order, no JVM left."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DDBLAKE = REPO / ".venv" / "bin" / "ddblake"


def _dynamodb_local_on(port: str) -> list[int]:
    """Live (non-zombie) DynamoDB Local processes listening on ``port``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"DynamoDBLocal.jar" in b" ".join(argv) and port.encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


def test_demo_prints_the_reference_changes_and_leaves_no_process(tmp_path: Path) -> None:
    lake = tmp_path / "demo lake"  # the closing `try:` line quotes it
    # A shell set up for a deployed lake: the demo keeps its own catalog in the lake all the same.
    env = {
        **os.environ,
        "DDBLAKE_STATE_DIR": str(tmp_path / "state"),
        "DDBLAKE_CATALOG": "glue",
        "DDBLAKE_NAMESPACE": "not_the_demos",
    }
    result = subprocess.run(
        [str(DDBLAKE), "demo", "--lake", lake.name],  # relative: the try line must work anywhere
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    port = re.search(r"DynamoDB Local: http://127\.0\.0\.1:(\d+)", out)
    assert port, out

    adam = [line for line in out.splitlines() if "id=864732, name=Adam" in line]
    assert [line.split()[2] for line in adam] == ["INSERT", "MODIFY", "MODIFY"]
    designations = [re.search(r"(Developer Advocate|Sr\. Architect|Architect)", line) for line in adam]
    assert [m.group(1) if m else None for m in designations] == [
        "Architect",
        "Sr. Architect",
        "Developer Advocate",
    ]
    eve = [line.split()[2] for line in out.splitlines() if "id=531337, name=Eve" in line]
    assert eve == ["INSERT", "REMOVE"]
    assert f"lake: file://{lake.resolve()}" in out
    assert f"Iceberg catalog: file://{lake.resolve()}/catalog.db (namespace ddb)" in out
    assert (lake / "catalog.db").exists()
    script = shlex.quote(str(DDBLAKE.absolute()))  # the venv's script: pastes from any folder
    try_line = f"try: {script} query --lake {shlex.quote(str(lake.resolve()))} --catalog sql --namespace ddb"
    assert f"{try_line} 'SELECT" in out
    assert any((lake / "raw" / "example-ddb-table").rglob("*.gz"))

    assert _dynamodb_local_on(port.group(1)) == [], "the demo must stop its DynamoDB Local"
