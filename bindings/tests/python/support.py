"""What the binding tests share: a real `gridsync serve` on loopback, and enrolled
devices with their keys, the way an app enrolls."""

import asyncio
import dataclasses
import os
import pathlib
import subprocess
import tempfile

import pytest

import gridsync_ffi as gs

ROOT = pathlib.Path(__file__).resolve().parents[3]
GRIDSYNC = os.environ.get("GRIDSYNC_BIN", str(ROOT / "target" / "debug" / "gridsync"))
WORKER = "w-339901001001001"
DISPATCHER = "cd-339901001001"
PHOTO = (pathlib.Path(__file__).parent / "photo.jpg").read_bytes()


@pytest.fixture()
def relay():
    data = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [GRIDSYNC, "serve", "--listen", "127.0.0.1:0", "--data", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "GRIDSYNC_LOG": "warn"},
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("gridsync listening on "), line
    yield data, line.removeprefix("gridsync listening on ")
    proc.terminate()
    proc.wait(timeout=10)


@dataclasses.dataclass
class Device:
    """One enrolled device: its engine, and what reopens it (the key an app keeps in
    the platform keystore)."""
    engine: gs.GridEngine
    path: str
    user: str
    device_id: str
    key: bytes

    def reopen(self, key):
        return gs.GridEngine.open(self.path, self.user, self.device_id, key)


def enrolled(relay, user, folder):
    data, url = relay
    code = subprocess.run(
        [GRIDSYNC, "admin", "--data", data, "enroll", "--user", user],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    device_id = gs.new_device_id()
    enrollment = asyncio.run(gs.enroll(url, code, device_id, "pytest"))
    assert enrollment.user == user
    path = os.path.join(folder, f"{user}.db")
    key = os.urandom(32)
    engine = gs.GridEngine.open(path, enrollment.user, device_id, key)
    engine.load_directory(enrollment.directory_json)
    engine.set_server(url, enrollment.token)
    return Device(engine, path, enrollment.user, device_id, key)


def device(relay, user, folder):
    return enrolled(relay, user, folder).engine


class Progress(gs.SyncObserver):
    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress.phase)
