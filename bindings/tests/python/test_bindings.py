"""The generated Python bindings, driven the way an app would: enroll with a real
`gridsync serve` on loopback, patrol, report a case with a photo, act on it, sync,
and see it arrive on a second device; the database opens only with its device key."""

import asyncio
import os
import pathlib
import subprocess
import tempfile
import time
import urllib.parse

import pytest

import gridsync_ffi as gs

from support import DISPATCHER, GRIDSYNC, PHOTO, WORKER, Progress, device, enrolled, relay  # noqa: F401 (relay is a fixture)


def test_a_scanned_enrollment_link_gives_the_server_and_the_code_to_enroll_with(relay):
    data, url = relay
    code = subprocess.run(
        [GRIDSYNC, "admin", "--data", data, "enroll", "--user", WORKER],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # What the console's QR code carries (docs/protocol.md, "Enrollment links").
    scanned = "gridsync://enroll?server=" + urllib.parse.quote(url, safe="") + "&code=" + code
    link = gs.parse_enrollment_link(scanned)
    assert (link.server_url, link.code) == (url, code)
    enrollment = asyncio.run(gs.enroll(link.server_url, link.code, gs.new_device_id(), "pytest"))
    assert enrollment.user == WORKER
    for bad in ["https://example.org/?code=" + code, scanned.replace("server=http", "server=ftp")]:
        with pytest.raises(gs.GridsyncError.InvalidInput) as refused:
            gs.parse_enrollment_link(bad)
        assert code not in str(refused.value)


def test_a_patrol_and_a_case_with_a_photo_reach_the_dispatcher(relay):
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    dispatcher = device(relay, DISPATCHER, folder)

    patrol = worker.start_patrol()
    now = int(time.time() * 1000)
    worker.add_track_points(patrol, [gs.TrackPointRecord(at_ms=now + 5000 * i, lat=30.27 + i * 1e-5, lon=120.15) for i in range(30)])
    photo = worker.ingest_photo(PHOTO, "IMG_0001.jpg")
    assert (photo.width, photo.height) == (320, 240)
    case_id = worker.report_case(gs.NewCaseRecord(
        title="楼上管道漏水", description="3号楼楼上漏水", category="livelihood",
        subcategory="livelihood.water_leak", severity="high", grid=None,
        lat=30.27, lon=120.15, address="望湖小区3号楼", photos=[photo.hash]))
    assert worker.act(case_id, gs.CaseAction.SELF_HANDLE(result="已现场处理")) == "verified"
    worker.end_patrol(patrol)
    assert worker.patrol_track_len(patrol) == 30

    assert worker.pending_changes() >= 3
    assert '"taxonomy"' in worker.directory_json()
    progress = Progress()
    summary = asyncio.run(worker.sync(progress))
    assert worker.pending_changes() == 0
    assert summary.pushed >= 3
    # A photo no larger than a thumbnail is its own thumbnail: one file.
    assert summary.photos_uploaded == len({photo.hash, photo.thumb})
    assert "push" in progress.seen and "photos" in progress.seen

    asyncio.run(dispatcher.sync(None))
    found = dispatcher.list_cases(gs.CaseFilterRecord(statuses=[], text="漏水", limit=0))
    assert [(c.id, c.channel) for c in found] == [(case_id, "phone")]
    # The channel it came in by filters the list: a worker's report is not a hotline call.
    assert dispatcher.list_cases(gs.CaseFilterRecord(statuses=[], channel="hotline")) == []
    with pytest.raises(gs.GridsyncError.InvalidInput):
        dispatcher.list_cases(gs.CaseFilterRecord(statuses=[], channel="telegram"))
    case = dispatcher.get_case(case_id)
    assert case.channel == "phone"
    assert [e.label_zh for e in case.timeline] == ["发现上报", "自行处置"]
    assert [p.hash for p in case.photos] == [photo.hash]
    assert dispatcher.act(case_id, gs.CaseAction.ARCHIVE()) == "archived"


def test_errors_are_typed_and_say_what_was_wrong(relay):
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    case_id = worker.report_case(gs.NewCaseRecord(
        title="占道经营", description="", category="city", subcategory=None,
        severity="normal", grid=None, lat=None, lon=None, address="", photos=[]))
    with pytest.raises(gs.GridsyncError.Refused) as refused:
        worker.act(case_id, gs.CaseAction.ARCHIVE())
    assert "grid_worker may not archive" in str(refused.value)
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.report_case(gs.NewCaseRecord(
            title=" ", description="", category="city", subcategory=None,
            severity="normal", grid=None, lat=None, lon=None, address="", photos=[]))
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.ingest_photo(b"not a photo", None)
    worker.close_store()
    with pytest.raises(gs.GridsyncError.Closed):
        worker.start_patrol()


class Changes(gs.DocumentsObserver):
    def __init__(self):
        self.seen = []

    def on_documents_changed(self, doc_ids):
        self.seen.append(doc_ids)


def test_observers_hear_of_synced_and_local_changes_until_their_handle_goes(relay):
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    dispatcher = device(relay, DISPATCHER, folder)
    changes = Changes()
    handle = dispatcher.watch(changes)

    case_id = worker.report_case(gs.NewCaseRecord(
        title="消防通道堵塞", description="", category="safety", subcategory=None,
        severity="high", grid=None, lat=None, lon=None, address="", photos=[]))
    asyncio.run(worker.sync(None))
    assert changes.seen == []
    asyncio.run(dispatcher.sync(None))
    assert changes.seen == [[case_id]], "the pulled case"
    dispatcher.act(case_id, gs.CaseAction.ACCEPT())
    assert changes.seen[-1] == [case_id], "a local action"

    del handle
    dispatcher.add_note(case_id, "已通知物业")
    assert len(changes.seen) == 2, "nothing after the handle is dropped"


def files_of(path):
    """The database and its journals, byte for byte."""
    folder, name = os.path.split(path)
    return {f: pathlib.Path(folder, f).read_bytes() for f in sorted(os.listdir(folder)) if f.startswith(name)}


def test_the_database_opens_only_with_its_key_and_rekey_moves_it(relay):
    folder = tempfile.mkdtemp()
    worker = enrolled(relay, WORKER, folder)
    case_id = worker.engine.report_case(gs.NewCaseRecord(
        title="井盖缺失", description="", category="city", subcategory=None,
        severity="high", grid=None, lat=None, lon=None, address="", photos=[]))
    worker.engine.close_store()
    before = files_of(worker.path)
    assert "井盖缺失".encode() not in b"".join(before.values()), "the title is not on disk in clear"

    with pytest.raises(gs.GridsyncError.WrongKey):
        worker.reopen(os.urandom(32))
    with pytest.raises(gs.GridsyncError.InvalidInput) as short:
        worker.reopen(worker.key[:16])
    assert "32 bytes" in str(short.value)
    assert files_of(worker.path) == before, "a wrong key changes nothing on disk"

    engine = worker.reopen(worker.key)
    assert engine.get_case(case_id).title == "井盖缺失"
    new_key = os.urandom(32)
    engine.rekey(new_key)
    assert engine.get_case(case_id).title == "井盖缺失", "the open engine goes on under the new key"
    engine.close_store()

    with pytest.raises(gs.GridsyncError.WrongKey):
        worker.reopen(worker.key)
    engine = worker.reopen(new_key)
    assert engine.get_case(case_id).title == "井盖缺失"
    # The token moved with the database: the case still reaches the relay.
    assert asyncio.run(engine.sync(None)).pushed >= 1
    assert engine.pending_changes() == 0
