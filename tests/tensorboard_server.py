"""A real TensorBoard server over a log dir, read through the JSON data API its UI reads."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT

# Every session, whatever it ended as: the HPARAMS table's filter, all boxes ticked.
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def hparams_table(get) -> tuple[dict, list[dict]]:
    """The HPARAMS tab's data: its experiment (columns: hparams and metrics) and its session
    groups (rows), as `get` of a TensorBoardServer reads them."""
    experiment = get("/data/plugin/hparams/experiment", {"experimentName": ""})
    groups = get(
        "/data/plugin/hparams/session_groups",
        {"experimentName": "", "startIndex": 0, "sliceSize": 100, "allowedStatuses": STATUSES},
    )["sessionGroups"]
    return experiment, groups


class TensorBoardServer:
    """A TensorBoard server on a free port of 127.0.0.1, serving `logdir` until the block
    ends; `get(path, body=None)` reads its JSON data API (POST when there is a body)."""

    def __init__(self, logdir: Path, expected_runs: int):
        self.logdir, self.expected_runs = logdir, expected_runs

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = subprocess.Popen(
            [
                *(sys.executable, "-m", "tensorboard.main", "--logdir", str(self.logdir)),
                *("--host", "127.0.0.1", "--port", str(self.port), "--reload_interval", "1"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until it has read every run
            try:
                if len(self.get("/data/runs")) >= self.expected_runs:
                    return self.get
            except OSError:
                assert self.server.poll() is None, self.server.stderr.read().decode()
            time.sleep(0.3)
        raise AssertionError("TensorBoard did not list the runs within 90 s")

    def get(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def __exit__(self, *exc):
        self.server.terminate()
        self.server.wait(timeout=30)
