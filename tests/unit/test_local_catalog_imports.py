"""Opening a local lake's catalog imports no boto3: apply on a file lake pays no AWS SDK import.

The Glue database check (``_ensure_namespace``) needs botocore's error codes only when creating the
namespace fails; importing them up front cost every local apply about 75 ms (bench/apply.py's
"other" phase, session 29).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_opening_and_creating_a_local_catalog_imports_no_boto3(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from ddblake.lake.catalog import LakeConfig, open_catalog\n"
        f"config = LakeConfig.build(lake={str(tmp_path / 'lake')!r})\n"
        "open_catalog(config, config.storage(), create=True)\n"
        "open_catalog(config, config.storage(), create=True)\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
