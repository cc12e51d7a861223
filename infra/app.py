#!/usr/bin/env python3
"""ddblake's CDK app (cdk.json runs this): `npx cdk synth -c config=infra/config/single-account.json`.

Synthesizes offline: accounts, region, names and key ARNs come from the configuration file, never
from credentials or lookups. See docs/deploy.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# jsii prints a banner on every run under an end-of-life Node.js; the Makefile checks Node itself.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

# The CDK libraries come with the "infra" extra, not with ddblake itself: without them say how to get
# them, in one line, rather than end `cdk synth` in a traceback.
_INFRA_MODULES = ("aws_cdk", "constructs", "cdk_nag", "jsii")

try:
    from ddblake_infra.build import main  # noqa: E402 - after the path and environment set-up
except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] not in (*_INFRA_MODULES, "ddblake"):
        raise
    print(
        f"ddblake infra: error: Python module {e.name!r} is not installed in {sys.executable}: the CDK app "
        "needs ddblake's 'infra' extra; run make synth (it installs it), or "
        "pip install -c constraints.txt -e '.[infra]' in this environment",
        file=sys.stderr,
    )
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(main())
