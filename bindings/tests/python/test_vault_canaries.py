"""The phone as a vault, seen from the disk: twenty canaries (names, ID numbers,
phones, addresses, a note, a photo's word) entered through the Python bindings by a
phone process that enrolls with a real `gridsync serve`, syncs, checkpoints and is
killed with SIGKILL; then every file the engine left (database, -wal, -shm, sealed
photos, temporary files) and, when strace is there, every byte the process ever
wrote to a file, searched byte by byte. Zero plaintext hits. The relay's log
(debug level) is searched the same way; its data folder is plaintext by design and
only serves as a control."""

import base64
import json
import os
import pathlib
import random
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
GRIDSYNC = os.environ.get("GRIDSYNC_BIN", str(ROOT / "target" / "debug" / "gridsync"))
WRITER = pathlib.Path(__file__).with_name("canary_writer.py")
WORKER = "w-339901001001001"
READY_TIMEOUT_S = 900


# --- the canaries: new random ones every run, so nothing fixed can match them ------

SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"
GIVEN = "秀英建国丽娟志强桂兰海燕德明玉珍淑芬振华春梅宝山凤琴"
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(rng):
    """An 18-digit resident ID number with a valid GB 11643 check character."""
    area = rng.choice(["330106", "330102", "330105", "110105", "440305", "510107"])
    born = f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02}{rng.randint(1, 28):02}"
    body = f"{area}{born}{rng.randint(0, 999):03}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]
    return body + check


def canaries(rng):
    names = set()
    while len(names) < 5:
        names.add(rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN))
    return {
        "names": sorted(names),
        "ids": [id_number(rng) for _ in range(5)],
        "phones": [rng.choice(["138", "139", "150", "186", "177", "135"])
                   + f"{rng.randrange(10**8):08}" for _ in range(4)],
        "addresses": [f"杭州市西湖区文三路{rng.randint(1, 999)}号{rng.randint(1, 30)}幢"
                      f"{rng.randint(1, 30)}{rng.randint(1, 4):02}室" for _ in range(4)],
        "note": f"独居老人需每周探访，钥匙在邻居处，暗号{rng.randrange(16**8):08X}",
        "photo_word": f"CANARY{rng.randrange(16**8):08X}",
    }


def flat(c):
    """(kind, text) of each of the twenty."""
    kinds = {"names": "name", "ids": "id", "phones": "phone", "addresses": "address"}
    out = [(kind, v) for k, kind in kinds.items() for v in c[k]]
    return out + [("note", c["note"]), ("photo_word", c["photo_word"])]


def needles(text):
    """The byte strings that would betray `text`: UTF-8 (for the digits that is
    ASCII), UTF-16LE, GB 18030 and JSON's \\u escapes."""
    forms = {"utf-8": text.encode(), "utf-16le": text.encode("utf-16-le"),
             "gb18030": text.encode("gb18030"),
             "json": json.dumps(text).strip('"').encode()}
    return {name: b for name, b in forms.items() if name == "utf-8" or b != forms["utf-8"]}


def photo_png(word):
    """A 320×240 PNG, no library needed: `word` in a tEXt chunk, and as the pixel
    bytes of every row (stored, not deflated, so the ASCII is in the file)."""
    width, height = 320, 240
    row = (word.encode() * (width * 3 // len(word) + 1))[: width * 3]
    raw = b"".join(b"\x00" + (row if y % 8 else bytes((x * 7 + y) % 256 for x in range(width * 3)))
                   for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"tEXt", b"Comment\x00" + word.encode())
            + chunk(b"IDAT", zlib.compress(raw, 0))
            + chunk(b"IEND", b""))


def jpeg_windows(jpeg):
    """Pieces of a plain JPEG that any copy of it on disk would contain: its header
    and four 32-byte windows from the entropy-coded data."""
    assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) > 1024
    n = len(jpeg)
    return [jpeg[:20]] + [jpeg[n * k // 5: n * k // 5 + 32] for k in range(1, 5)]


# --- the search -------------------------------------------------------------------

def search(blobs, table):
    """Hits of `table` ({label: bytes}) in `blobs` ({name: bytes}): [(name, label)]."""
    return [(name, label) for name, data in blobs.items()
            for label, needle in table.items() if needle in data]


def files_under(*folders):
    return {str(p): p.read_bytes() for folder in folders
            for p in sorted(pathlib.Path(folder).rglob("*")) if p.is_file()}


def strace_works():
    if not shutil.which("strace"):
        return False
    probe = subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "true"],
                           capture_output=True)
    return probe.returncode == 0


def hexstr(s):
    return bytes.fromhex(s.replace("\\x", ""))


def written_by(trace):
    """Every byte the traced process passed to write/pwrite64/writev on a regular
    file (pipes and sockets left out), by path; and the paths it opened with
    O_CREAT. Strings were traced as \\x escapes in full (-xx, -s)."""
    hexes = r"((?:\\x[0-9a-f]{2})*)"
    call = re.compile(r"^\d+ +(write|pwrite64|writev|pwritev2?)\(\d+<" + hexes + ">, ")
    created_at = re.compile(r'^\d+ +(?:openat|creat)\([^"]*"' + hexes + r'"[^)]*O_CREAT')
    iov = re.compile(r'(?:iov_base=)?"' + hexes + r'"(\.\.\.)?')
    written, created = {}, set()
    with open(trace, encoding="ascii", errors="replace") as lines:
        for line in lines:
            m = created_at.match(line)
            if m:
                created.add(hexstr(m.group(1)).decode(errors="replace"))
                continue
            m = call.match(line)
            if not m:
                continue
            path = hexstr(m.group(2)).decode(errors="replace")
            if not path.startswith("/") or path.startswith(("/dev/", "/proc/")):
                continue
            rest = line[m.end():]
            vectored = m.group(1).startswith(("writev", "pwritev"))
            parts = iov.findall(rest) if vectored else [iov.match(rest).groups()]
            for data, cut in parts:
                assert not cut, f"strace shortened a write to {path}"
                written.setdefault(path, bytearray()).extend(hexstr(data))
    return written, created


# --- the relay and the phone ------------------------------------------------------

@pytest.fixture()
def relay(tmp_path):
    """`gridsync serve` at debug level, its log in a file. (Like test_bindings.py's
    fixture, which sends the log to /dev/null at warn.)"""
    data, log = tmp_path / "relay", tmp_path / "relay.log"
    data.mkdir()
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [GRIDSYNC, "serve", "--listen", "127.0.0.1:0", "--data", str(data)],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "GRIDSYNC_LOG": "debug"})
    line = proc.stdout.readline().strip()
    assert line.startswith("gridsync listening on "), line
    yield data, line.removeprefix("gridsync listening on "), log, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def read_ready(proc, timeout):
    """The writer's READY and its report, or the reason it gave none."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline and len(lines) < 2:
        if sel.select(timeout=1):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
    if lines[:1] != ["READY"] or len(lines) < 2:
        proc.kill()
        proc.wait(timeout=30)
        err = proc.stderr.read()
        pytest.fail(f"the writer gave no READY ({lines!r}); stderr:\n{err[-4000:]}")
    return json.loads(lines[1])


def test_nothing_the_phone_leaves_on_disk_or_the_relay_logs_is_readable(relay, tmp_path):
    data, url, relay_log, relay_proc = relay
    rng = random.Random(os.urandom(16))
    c = canaries(rng)
    twenty = flat(c)
    assert len(twenty) == 20
    table = {f"{kind}#{i}/{form}": b for i, (kind, text) in enumerate(twenty)
             for form, b in needles(text).items()}
    png = photo_png(c["photo_word"])

    tmp_path = pathlib.Path(os.path.realpath(tmp_path))  # as strace names it
    phone, tmp = tmp_path / "phone", tmp_path / "phone-tmp"
    phone.mkdir()
    tmp.mkdir()
    code = subprocess.run([GRIDSYNC, "admin", "--data", str(data), "enroll", "--user", WORKER],
                          check=True, capture_output=True, text=True).stdout.strip()
    trace = tmp_path / "writes.strace"
    traced = strace_works()
    cmd = [sys.executable, str(WRITER)]
    if traced:
        cmd = ["strace", "-f", "-qq", "-yy", "-xx", "-s", "16777216", "-o", str(trace),
               "-e", "trace=openat,creat,write,pwrite64,writev,pwritev,pwritev2"] + cmd
    # sys.executable is the interpreter the wheel is installed in: the writer imports
    # the same package.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           # SQLite's and anyone else's temporary files land where they are searched.
           "TMPDIR": str(tmp), "SQLITE_TMPDIR": str(tmp)}
    writer = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    writer.stdin.write(json.dumps({
        "url": url, "code": code, "user": WORKER, "folder": str(phone),
        "canaries": c, "photo_png": base64.b64encode(png).decode()}, ensure_ascii=False))
    writer.stdin.close()
    report = read_ready(writer, READY_TIMEOUT_S)

    # Mid-life, the engine open, the WAL live: SIGKILL, no chance to clean up.
    os.kill(report["pid"], signal.SIGKILL)
    writer.wait(timeout=60)
    writer.stdout.close()
    writer.stderr.close()
    with pytest.raises(ProcessLookupError):
        os.kill(report["pid"], 0)
    relay_proc.terminate()
    relay_proc.wait(timeout=10)

    display = base64.b64decode(report["photo"]["display"])
    thumb = base64.b64decode(report["photo"]["thumb"])
    photo_table = {f"photo/{which}#{k}": w
                   for which, jpeg in {"display": display, "thumb": thumb}.items()
                   if which == "display" or jpeg != display
                   for k, w in enumerate(jpeg_windows(jpeg))}
    everything = {**table, **photo_table}

    # Control: the same search finds every canary and the photo in plaintext copies
    # of what went in (the bindings no longer open a database without a key, so the
    # plaintext copy is a file of our own), and in the relay's data folder, which
    # holds what the phone sent, in plaintext by design.
    control = {"entered.json": json.dumps(c, ensure_ascii=False).encode(),
               "canary.png": png, "display.jpg": display, "thumb.jpg": thumb}
    control_hits = {label for _, label in search(control, everything)}
    missed = [label for label in everything
              if label.endswith("/utf-8") or label.startswith("photo/")
              if label not in control_hits]
    assert not missed, f"the search misses plaintext it should find: {missed}"
    relay_data_hits = {label.split("/")[0] for _, label in search(files_under(data), everything)}
    assert any(h.startswith("photo") for h in relay_data_hits), \
        "the relay holds the plain photo the phone handed back: the windows are real"
    assert any(h.startswith(("name", "id", "phone", "address", "note")) for h in relay_data_hits), \
        "the canaries did reach the relay"

    # What the engine left on disk, byte for byte (file names too).
    left = files_under(phone, tmp)
    names = sorted(os.path.relpath(p, tmp_path) for p in left)
    assert "phone/phone.db" in names and "phone/phone.db-wal" in names \
        and "phone/phone.db-shm" in names, names
    assert len(left["%s/phone.db-wal" % phone]) > 0, "the WAL was live when the process died"
    sealed = [n for n in names if n.endswith(".sealed")]
    assert len(sealed) >= 1, names
    assert not [n for n in names if n.endswith(".jpg")], names
    hits = search(left, everything) + search({"file names": "\n".join(left).encode()}, everything)

    # Every byte the process wrote to any file, including files gone by the end.
    if traced:
        written, created = written_by(trace)
        outside = sorted(p for p in set(written) | created
                         if not p.startswith((str(phone), str(tmp))))
        assert not outside, f"the phone process wrote outside its folders: {outside}"
        gone = sorted(os.path.relpath(p, tmp_path) for p in written if p not in left)
        # The trace is read right: each sealed file is the bytes written to its
        # temporary name before the rename.
        for name in sealed:
            assert left[str(tmp_path / name)] in [bytes(b) for b in written.values()], name
        trace_hits = search({p: bytes(b) for p, b in written.items()}, everything)
    else:
        written, created, gone, trace_hits = {}, set(), [], []

    log = relay_log.read_bytes()
    log_hits = search({"relay.log": log}, table)

    figures = {
        "files_scanned": len(left), "bytes_scanned": sum(map(len, left.values())),
        "files": names, "canaries": len(twenty), "needles": len(table),
        "photo_windows": len(photo_table), "hits": len(hits),
        "write_trace": "strace" if traced else "unavailable",
        "traced_files": len(written), "traced_created": len(created), "traced_bytes": sum(map(len, written.values())),
        "traced_files_gone_before_kill": gone, "traced_hits": len(trace_hits),
        "relay_log_bytes_scanned": len(log), "relay_log_lines": log.count(b"\n"),
        "relay_log_hits": len(log_hits),
        "control_hits": len(control_hits), "relay_data_control_hits": sorted(relay_data_hits),
        "cases": report["cases"], "pushed": report["pushed"],
        "photos_uploaded": report["photos_uploaded"],
        "wal_after_clean_close": report["wal_after_clean_close"],
        "auto_checkpoint": report["auto_checkpoint"], "filler_batches": report["filler_batches"],
        "wal_at_kill": report["wal_at_ready"],
    }
    print(json.dumps(figures, ensure_ascii=False))

    assert report["photos_uploaded"] >= 1 and report["pushed"] >= 5
    assert report["auto_checkpoint"], "SQLite checkpointed the WAL into the database file"
    assert report["wal_after_clean_close"] is None, "the clean close checkpointed and removed the WAL"
    assert hits == [], f"plaintext on the phone's disk: {hits}"
    assert trace_hits == [], f"plaintext written by the phone process: {trace_hits}"
    assert log_hits == [], f"personal data in the relay's log: {log_hits}"
