"""The phone side of test_vault_canaries.py, run in its own process so that it can be
killed with SIGKILL: enroll, enter the canaries given on stdin through the Python
bindings, sync, make the database checkpoint, print READY and wait to be killed.

stdin: one JSON object with url, code, user, folder, the canary texts (names, ids,
phones, addresses, note) and the photo (base64). stdout: READY and one JSON object
(pid, the photo's plain renditions as the engine hands them back, what happened to
the WAL). Nothing here writes a file: every file in `folder` is the engine's."""

import asyncio
import base64
import json
import os
import sys
import time

import gridsync_ffi as gs


def stat(path):
    try:
        s = os.stat(path)
        return s.st_size, s.st_mtime_ns
    except FileNotFoundError:
        return None


def new_case(c, i, photos):
    """Case `i`: name in the title, ID number and phone in the description, the
    address in the location."""
    phone = c["phones"][i % len(c["phones"])]
    return gs.NewCaseRecord(
        title=f"{c['names'][i]}反映楼道堆物",
        description=f"住户{c['names'][i]}，身份证号{c['ids'][i]}，联系电话{phone}",
        category="livelihood", subcategory=None, severity="normal", grid=None,
        lat=30.27 + i * 1e-4, lon=120.15,
        address=c["addresses"][i % len(c["addresses"])], photos=photos)


def everything(c, i):
    """All canaries of case `i` in one note."""
    phone = c["phones"][i % len(c["phones"])]
    address = c["addresses"][i % len(c["addresses"])]
    return f"{c['note']} {c['names'][i]} {c['ids'][i]} {phone} {address}"


def main():
    job = json.load(sys.stdin)
    c = job["canaries"]
    db = os.path.join(job["folder"], "phone.db")
    key = os.urandom(32)
    device_id = gs.new_device_id()
    enrollment = asyncio.run(gs.enroll(job["url"], job["code"], device_id, "pytest"))
    engine = gs.GridEngine.open(db, enrollment.user, device_id, key)
    engine.load_directory(enrollment.directory_json)
    engine.set_server(job["url"], enrollment.token)

    # 1. Every canary in a case, the photo, a sync; then a clean close, which
    # checkpoints the WAL into the database file.
    photo = engine.ingest_photo(base64.b64decode(job["photo_png"]), "canary.png")
    cases = [engine.report_case(new_case(c, i, [photo.hash] if i == 0 else []))
             for i in range(len(c["names"]))]
    for i, case_id in enumerate(cases):
        engine.add_note(case_id, everything(c, i))
    first = asyncio.run(engine.sync(None))
    engine.close_store()
    wal = db + "-wal"
    wal_after_close = stat(wal)

    # 2. Reopened: the canaries again, then GPS fixes until SQLite's automatic
    # checkpoint copies the WAL into the database file (the bindings have no call
    # that checkpoints, so volume is what makes one happen).
    engine = gs.GridEngine.open(db, enrollment.user, device_id, key)
    for i, case_id in enumerate(cases):
        engine.add_note(case_id, everything(c, i))
    before = stat(db)
    patrol = engine.start_patrol()
    now = int(time.time() * 1000)
    batches = 0
    while stat(db) == before and batches < 5000:
        points = [gs.TrackPointRecord(at_ms=now + 1000 * (batches * 50 + k),
                                      lat=30.27 + (batches * 50 + k) * 1e-6, lon=120.15)
                  for k in range(50)]
        try:
            engine.add_track_points(patrol, points)
        except gs.GridsyncError.InvalidInput:  # the track is full
            engine.end_patrol(patrol)
            patrol = engine.start_patrol()
        batches += 1
    checkpointed = stat(db) != before
    engine.end_patrol(patrol)

    # 3. After the checkpoint: the canaries once more, so the live WAL holds them
    # when the process dies; an action and a sync as a phone would.
    for i, case_id in enumerate(cases):
        engine.add_note(case_id, everything(c, i))
    engine.act(cases[0], gs.CaseAction.SELF_HANDLE(result=f"已联系{c['names'][0]}（{c['phones'][0]}）"))
    second = asyncio.run(engine.sync(None))

    display = engine.photo_bytes(photo.hash)
    thumb = engine.photo_bytes(photo.thumb)
    print("READY", flush=True)
    print(json.dumps({
        "pid": os.getpid(),
        "cases": len(cases),
        "pushed": first.pushed + second.pushed,
        "photos_uploaded": first.photos_uploaded + second.photos_uploaded,
        "photo": {"display": base64.b64encode(display).decode(),
                  "thumb": base64.b64encode(thumb).decode()},
        "wal_after_clean_close": wal_after_close,
        "auto_checkpoint": checkpointed,
        "filler_batches": batches,
        "wal_at_ready": stat(wal),
    }), flush=True)
    # Still open, mid-life: the parent kills this process here.
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
