"""The directory as versioned data, seen through the generated Python bindings: an
operator stores a new revision beside a running `gridsync serve`; the app's next
sync says the directory changed, and the engine's directory is the new one."""

import asyncio
import json
import pathlib
import subprocess
import tempfile
import time

from support import GRIDSYNC, ROOT, WORKER, device, relay  # noqa: F401 (relay is a fixture)

NEW_GRID = "339901002001002"


def region_of(engine, user):
    return next(u.region for u in engine.directory().users if u.id == user)


def test_a_new_directory_revision_reaches_the_app_at_its_next_sync(relay):
    data, _ = relay
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    first = asyncio.run(worker.sync(None))
    # Enrolled with the directory of the enrollment answer (revision 0 on the
    # phone): the first sync brings the server's revision once.
    assert first.directory_updated
    assert not asyncio.run(worker.sync(None)).directory_updated
    assert region_of(worker, WORKER) == "339901001001001"

    directory = json.loads((ROOT / "core" / "data" / "sample-directory.json").read_text())
    me = next(u for u in directory["users"] if u["id"] == WORKER)
    me["region"] = NEW_GRID
    moved = pathlib.Path(folder) / "moved.json"
    moved.write_text(json.dumps(directory, ensure_ascii=False))
    stored = subprocess.run(
        [GRIDSYNC, "admin", "--data", data, "directory", "import", str(moved)],
        check=True, capture_output=True, text=True,
    ).stdout
    assert "revision" in stored

    # The running server looks for a newer revision every 2 seconds.
    deadline = time.monotonic() + 20
    updated = False
    while region_of(worker, WORKER) != NEW_GRID:
        assert time.monotonic() < deadline, "the revision never reached the app"
        time.sleep(0.3)
        updated |= asyncio.run(worker.sync(None)).directory_updated
    assert updated
