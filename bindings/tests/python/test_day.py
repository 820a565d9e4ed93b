"""A grid worker's whole day through the SDK, against a real `gridsync serve`:
enroll, pick from the directory, patrol with check-ins and an observation, report
a case with a photo and the people involved, add a second photo to it later, sync
with progress; the dispatcher counts and filters, fetches the photo she has never
had, dispatches; the department handles it; the worker verifies; the dispatcher
archives and evaluates; the worker's closed photos are evicted and fetched again;
and a revoked phone erases itself at its next sync."""

import asyncio
import os
import pathlib
import subprocess
import tempfile
import time

import pytest

import gridsync_ffi as gs

from support import DISPATCHER, GRIDSYNC, PHOTO, WORKER, Progress, enrolled, relay  # noqa: F401 (relay is a fixture)

HANDLER = "h-water-1"
SECOND_PHOTO = (pathlib.Path(__file__).resolve().parents[3] / "core" / "tests" / "fixtures" / "progressive.jpg").read_bytes()


class Bytes(gs.SyncObserver):
    """Every progress report, whole."""

    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress)


def sync(engine, observer=None):
    return asyncio.run(engine.sync(observer))


def new_case(title, **fields):
    base = dict(title=title, description="", category="livelihood", subcategory=None,
                severity="normal", grid=None, lat=None, lon=None, address="", photos=[])
    return gs.NewCaseRecord(**{**base, **fields})


def test_a_whole_day_through_the_sdk(relay):
    folder = tempfile.mkdtemp()
    worker = enrolled(relay, WORKER, folder).engine
    dispatcher = enrolled(relay, DISPATCHER, folder).engine
    handler = enrolled(relay, HANDLER, folder).engine

    # The pickers come from the directory the device holds.
    me = worker.me()
    assert (me.id, me.role) == (WORKER, "grid_worker") and me.role_zh
    directory = worker.directory()
    livelihood = next(c for c in directory.categories if c.code == "livelihood")
    assert livelihood.name and livelihood.name_en
    leak = next(s for s in livelihood.subcategories if s.code == "livelihood.water_leak")
    assert me.region in {r.code for r in directory.regions if r.level == "grid"}
    assert "water" in {d.id for d in directory.departments}

    # The morning patrol: a track, two check-ins, an observation, a case.
    patrol = worker.start_patrol()
    start = int(time.time() * 1000)
    worker.add_track_points(patrol, [gs.TrackPointRecord(at_ms=start + 5000 * i, lat=30.27 + i * 1e-5, lon=120.15) for i in range(20)])
    worker.check_in(patrol, "3号楼2单元", 30.2701, 120.1501)
    worker.check_in(patrol, "小区东门", 30.2712, 120.1508)
    worker.add_observation(patrol, "东门路灯不亮，已告知物业")
    photo = worker.ingest_photo(PHOTO, "IMG_0001.jpg")
    case_id = worker.report_case(new_case(
        "楼上管道漏水", description="3号楼楼上漏水，楼下天花板渗水", subcategory=leak.code,
        severity="high", lat=30.2701, lon=120.1501, address="望湖小区3号楼", photos=[photo.hash],
        people=[gs.PersonRecord(name="王建国", role="业主", phone="13800001234")]))
    worker.link_case_to_patrol(patrol, case_id)
    worker.end_patrol(patrol)
    walked = worker.get_patrol(patrol)
    assert [c.place for c in walked.checkins] == ["3号楼2单元", "小区东门"]
    assert [o.text for o in walked.observations] == ["东门路灯不亮，已告知物业"]
    assert walked.cases == [case_id] and len(walked.track) == 20 and walked.ended_ms

    # A second photo, taken after the report, goes onto the same case.
    later = worker.ingest_photo(SECOND_PHOTO, None)
    assert later.hash != photo.hash
    worker.attach_photo(case_id, later.hash)
    mine = worker.get_case(case_id)
    assert [p.hash for p in mine.photos] == [photo.hash, later.hash]
    assert mine.people[0].phone == "13800001234" and mine.location.address == "望湖小区3号楼"
    usage = worker.photo_usage()
    assert usage.display == 2 and usage.waiting_upload >= 2 and usage.display_bytes > 0

    # Sync, watching the bytes go.
    progress = Bytes()
    summary = sync(worker, progress)
    assert worker.pending_changes() == 0 and summary.rejected == 0
    pushes = [p for p in progress.seen if p.phase == "push"]
    assert pushes and pushes[-1].remaining == 0 and pushes[-1].bytes_remaining == 0
    uploads = [p for p in progress.seen if p.phase == "photos"]
    assert uploads[-1].remaining == 0 and uploads[-1].bytes_remaining == 0
    assert uploads[0].bytes_remaining > 0, "the bytes still to upload are told"
    assert worker.photo_usage().waiting_upload == 0
    assert worker.rejected_changes() == []

    # The dispatcher: badges, filters, and a photo she has never had.
    pulled = Bytes()
    sync(dispatcher, pulled)
    pulls = [p for p in pulled.seen if p.phase == "pull"]
    assert pulls and pulls[-1].items >= 1 and pulls[-1].remaining == 0
    counts = {c.status: c.count for c in dispatcher.count_cases(gs.CaseFilterRecord(region=me.region))}
    assert counts == {"reported": 1}
    assert [c.id for c in dispatcher.list_cases(gs.CaseFilterRecord(category="livelihood", severity="high"))] == [case_id]
    assert dispatcher.list_cases(gs.CaseFilterRecord(severity="low")) == []
    assert [c.id for c in dispatcher.list_my_work(0, 0)] == [case_id]
    row = dispatcher.list_cases(gs.CaseFilterRecord(text="渗水"))[0]
    assert (row.photo_count, row.severity, row.reporter, row.grid) == (2, "high", WORKER, me.region)

    assert not dispatcher.has_photo(photo.hash)
    with pytest.raises(gs.GridsyncError.NotFound):
        dispatcher.photo_bytes(photo.hash)
    fetching = Bytes()
    fetched = asyncio.run(dispatcher.fetch_photo(photo.hash, fetching))
    assert fetched == worker.photo_bytes(photo.hash)
    assert fetching.seen[-1].phase == "fetch" and fetching.seen[-1].items == 1
    assert fetching.seen[-1].bytes == len(fetched) and fetching.seen[-1].bytes_remaining == 0
    assert dispatcher.has_photo(photo.hash) and dispatcher.photo_usage().display == 1

    # Accept and dispatch; a second case is dispatched with a deadline already
    # past, so the overdue filter finds it and only it.
    assert dispatcher.act(case_id, gs.CaseAction.ACCEPT()) == "accepted"
    assert dispatcher.act(case_id, gs.CaseAction.DISPATCH(dept="water", deadline_ms=None)) == "dispatched"
    late_id = worker.report_case(new_case("水管爆裂", subcategory=leak.code))
    sync(worker)
    sync(dispatcher)
    dispatcher.act(late_id, gs.CaseAction.ACCEPT())
    past = int(time.time() * 1000) - 3_600_000
    dispatcher.act(late_id, gs.CaseAction.DISPATCH(dept="water", deadline_ms=past))
    assert [c.id for c in dispatcher.list_cases(gs.CaseFilterRecord(overdue=True))] == [late_id]
    assert {c.id for c in dispatcher.list_cases(gs.CaseFilterRecord(assigned_dept="water"))} == {case_id, late_id}
    dispatched = dispatcher.get_case(case_id)
    entry = dispatched.timeline[-1]
    assert entry.action == "dispatch" and isinstance(entry.details, gs.CaseAction.DISPATCH)
    assert entry.details.dept == "water" and entry.details.deadline_ms == dispatched.deadline_ms
    assert dispatched.assigned_dept == "water" and dispatched.deadline_ms > past
    sync(dispatcher)

    # The department handles it; the worker verifies on site.
    sync(handler)
    assert {c.id for c in handler.list_my_work(0, 0)} == {case_id, late_id}
    handler.act(case_id, gs.CaseAction.FEEDBACK(result="已更换水管"))
    sync(handler)
    sync(worker)
    assert [c.id for c in worker.list_my_work(0, 0)] == [case_id], "waiting for her verification"
    assert worker.act(case_id, gs.CaseAction.VERIFY(passed=True, comment="已修好")) == "verified"
    sync(worker)

    # The dispatcher closes the loop.
    sync(dispatcher)
    dispatcher.act(case_id, gs.CaseAction.ARCHIVE())
    assert dispatcher.act(case_id, gs.CaseAction.EVALUATE(satisfaction=5, comment="居民满意")) == "evaluated"
    sync(dispatcher)
    sync(worker)
    closed = worker.get_case(case_id)
    assert closed.status == "evaluated" and closed.satisfaction == 5
    assert [e.action for e in closed.timeline] == [
        "report", "accept", "dispatch", "feedback", "verify", "archive", "evaluate"]
    assert all(e.outcome == "applied" and e.outcome_reason is None for e in closed.timeline)

    # The photos of a closed case are on the server: the quota may evict them,
    # and they come back on demand.
    freed = worker.evict_photos(0)
    assert freed == usage.display_bytes
    assert not worker.has_photo(photo.hash) and worker.photo_usage().display == 0
    assert asyncio.run(worker.fetch_photo(photo.hash, None)) == fetched


def test_a_revoked_phone_erases_itself_at_its_next_sync(relay):
    data, _ = relay
    folder = tempfile.mkdtemp()
    phone = enrolled(relay, WORKER, folder)
    phone.engine.report_case(new_case("井盖缺失"))
    phone.engine.ingest_photo(PHOTO, None)
    sync(phone.engine)
    assert os.listdir(folder), "the engine's files"
    subprocess.run([GRIDSYNC, "admin", "--data", data, "revoke", "--device", phone.device_id],
                   check=True, capture_output=True)
    with pytest.raises(gs.GridsyncError.Wiped):
        sync(phone.engine)
    assert os.listdir(folder) == [], "database, journals and photos are gone"
    with pytest.raises(gs.GridsyncError.Wiped):
        phone.engine.list_cases(gs.CaseFilterRecord())
