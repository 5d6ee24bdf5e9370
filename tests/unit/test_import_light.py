"""Importing the Faust app builds nothing heavy and opens nothing (issue #10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_builds_no_geography_and_opens_no_connection():
    script = (
        "import json, socket\n"
        "opened = []\n"
        "real = socket.socket.connect\n"
        "def spy(self, address):\n"
        "    opened.append(str(address)); return real(self, address)\n"
        "socket.socket.connect = spy\n"
        "import agents.worker\n"
        "from yrd_hazmat.core.geo import jurisdiction\n"
        "print(json.dumps({'index': jurisdiction.default_index.cache_info().currsize,\n"
        "                  'provinces': jurisdiction.province_shapes_metric.cache_info().currsize,\n"
        "                  'connections': opened}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                         capture_output=True, text=True, env=env | {"PYTHONPATH": str(ROOT)})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"index": 0, "provinces": 0, "connections": []}
