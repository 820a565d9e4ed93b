"""The grid's base data through the Python bindings, as a resident screen uses it:
register a household and its members, list them with ID and phone numbers masked,
open one in full, refuse a mistyped ID number without repeating it, move a person,
and keep a department handler out."""

import re
import tempfile
import time

import pytest

import gridsync_ffi as gs

from support import PHOTO, WORKER, device, relay  # noqa: F401 (relay is a fixture)

HANDLER = "h-water-1"
WORKER_GRID = "339901001001001"
ZHANG_ID = "33010619900101131X"
LI_ID = "330106198506120023"


def register_family(worker):
    home = worker.register_household(None, "望湖小区3号楼2单元501")
    zhang = worker.register_person(gs.NewPersonRecord(
        name="张建国", id_number=ZHANG_ID, phone="138 1234 5678",
        household=gs.MembershipRecord(household_id=home, relation="户主"),
        special_groups=[gs.SpecialGroup.LOW_INCOME]))
    li = worker.register_person(gs.NewPersonRecord(
        name="李秀英", id_number=LI_ID, phone="0571-88886666",
        household=gs.MembershipRecord(household_id=home, relation="配偶")))
    return home, zhang, li


class Changes(gs.DocumentsObserver):
    def __init__(self):
        self.seen = []

    def on_documents_changed(self, doc_ids):
        self.seen.extend(doc_ids)


def test_a_list_shows_numbers_masked_and_a_detail_view_in_full(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    changes = Changes()
    handle = worker.watch(changes)
    home, zhang, li = register_family(worker)
    # A resident screen refreshes on the same notifications as a case list.
    assert set(changes.seen) == {home, zhang, li}
    del handle
    worker.set_household_head(home, zhang)

    rows = worker.list_persons(gs.PersonFilterRecord())
    assert [r.name for r in rows] == ["张建国", "李秀英"]
    by_id = {r.id: r for r in rows}
    assert by_id[zhang].id_masked == "3301**********131X"
    assert by_id[zhang].phone_masked == "138****5678"
    assert by_id[li].id_masked == "3301**********0023"
    assert by_id[li].phone_masked == "0571-****6666"
    assert by_id[zhang].sex == gs.Sex.MALE and by_id[li].sex == gs.Sex.FEMALE
    # The year only in a list: a whole date beside the masked number gives it away.
    assert by_id[zhang].birth_year == 1990
    assert by_id[zhang].household == gs.MembershipRecord(household_id=home, relation="户主")
    assert by_id[zhang].special_groups == [gs.SpecialGroup.LOW_INCOME]
    # No full number anywhere in what a list hands the app.
    # (str, not repr: the generated records' repr shows no fields.)
    shown = "\n".join(str(r) for r in rows)
    assert "131X" in shown, "the masked numbers are there to be seen"
    for number in (ZHANG_ID, LI_ID, "13812345678", "88886666"):
        assert number not in shown

    # The filters a resident screen offers.
    assert [r.id for r in worker.list_persons(gs.PersonFilterRecord(id_suffix="131x"))] == [zhang]
    assert [r.id for r in worker.list_persons(gs.PersonFilterRecord(name="秀英"))] == [li]
    assert [r.id for r in worker.list_persons(
        gs.PersonFilterRecord(special_group=gs.SpecialGroup.LOW_INCOME))] == [zhang]
    assert len(worker.list_persons(gs.PersonFilterRecord(household_id=home))) == 2

    person = worker.get_person(zhang)
    assert person.id_number == ZHANG_ID
    assert person.phone == "13812345678"
    assert person.id_masked == "3301**********131X"
    assert person.phone_masked == "138****5678"
    assert (person.sex, person.born) == (gs.Sex.MALE, "1990-01-01")
    assert person.created_by == WORKER
    household = worker.get_household(home)
    assert (household.address, household.head, household.left_ms) == ("望湖小区3号楼2单元501", zhang, None)

    [grid] = worker.registry_counts(None)
    assert (grid.persons, grid.households) == (2, 1)
    counts = {c.group: c.count for c in grid.special_groups}
    assert counts[gs.SpecialGroup.LOW_INCOME] == 1 and counts[gs.SpecialGroup.DISABLED] == 0
    assert [g.label_zh for g in gs.special_groups()][:3] == ["独居老人", "残疾人", "低保"]


def test_a_mistyped_id_number_is_refused_without_repeating_it(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    typed = ZHANG_ID[:17] + "5"  # wrong check digit
    with pytest.raises(gs.GridsyncError.InvalidInput) as refused:
        worker.register_person(gs.NewPersonRecord(name="张建国", id_number=typed))
    message = str(refused.value)
    assert "校验位" in message
    assert not re.search(r"\d", message), message
    with pytest.raises(gs.GridsyncError.InvalidInput) as refused:
        worker.register_person(gs.NewPersonRecord(name="张建国", phone="1381234567"))
    assert "电话号码" in str(refused.value) and "1381234567" not in str(refused.value)
    # A birth date that contradicts the ID number.
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.register_person(gs.NewPersonRecord(name="张建国", id_number=ZHANG_ID, born="1991-01-01"))
    assert worker.list_persons(gs.PersonFilterRecord()) == []


def test_a_person_moves_and_is_edited(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    home, zhang, li = register_family(worker)
    flat = worker.register_household(None, "望湖小区5号楼101")

    worker.move_person(li, gs.MembershipRecord(household_id=flat, relation="户主"))
    assert worker.get_person(li).household == gs.MembershipRecord(household_id=flat, relation="户主")
    assert [r.id for r in worker.list_persons(gs.PersonFilterRecord(household_id=home))] == [zhang]
    assert [r.id for r in worker.list_persons(gs.PersonFilterRecord(household_id=flat))] == [li]
    worker.move_person(li, None)
    assert worker.get_person(li).household is None

    # A blank phone clears it; groups are added one by one.
    worker.edit_person(li, gs.PersonEditRecord(phone="", add_groups=[gs.SpecialGroup.ELDERLY_ALONE]))
    person = worker.get_person(li)
    assert (person.phone, person.phone_masked) == (None, None)
    assert person.special_groups == [gs.SpecialGroup.ELDERLY_ALONE]
    assert person.id_number == LI_ID

    # A new ID number brings the sex and birth date it records.
    wang = worker.register_person(gs.NewPersonRecord(name="王芳"))
    worker.edit_person(wang, gs.PersonEditRecord(id_number=ZHANG_ID))
    person = worker.get_person(wang)
    assert (person.id_number, person.sex, person.born) == (ZHANG_ID, gs.Sex.MALE, "1990-01-01")
    worker.edit_person(wang, gs.PersonEditRecord(id_number=" ", clear_sex=True, born=""))
    person = worker.get_person(wang)
    assert (person.id_number, person.sex, person.born) == (None, None, None)

    worker.household_leaves(flat)
    assert worker.get_household(flat).left_ms is not None
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.move_person(li, gs.MembershipRecord(household_id=flat, relation="户主"))
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.household_leaves(flat)


def test_a_visit_on_patrol_clears_the_due_list_and_counts_in_coverage(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    home, zhang, li = register_family(worker)
    # 张建国 is low-income (monthly in the sample directory); 李秀英 in no group.
    assert [(d.person.id, d.every_days, d.last_visit_ms) for d in worker.due_visits()] == [
        (zhang, 30, None)]

    patrol = worker.start_patrol()
    photo = worker.ingest_photo(PHOTO, "IMG_0001.jpg")
    worker.visit(patrol, home, "低保材料已更新，老人身体状况良好", 30.2741, 120.1551,
                 photo_hash=photo.hash)
    assert worker.due_visits() == []
    visits = worker.get_household(home).visits
    assert [(v.by, v.patrol_id, v.findings) for v in visits] == [
        (WORKER, patrol, "低保材料已更新，老人身体状况良好")]
    # The photo taken there goes with the visit and waits for upload like a case's.
    assert (visits[0].photo_hash, visits[0].thumb_hash) == (photo.hash, photo.thumb)
    # (A photo this small is its own thumbnail: one file.)
    assert worker.photo_usage().waiting_upload == len({photo.hash, photo.thumb})
    # The patrol's check-in names the household, not what was found there.
    checkin = worker.get_patrol(patrol).checkins[0]
    assert "入户走访" in str(checkin) and "低保" not in str(checkin)

    month = time.gmtime(visits[0].at_ms / 1000 + 8 * 3600)
    coverage = worker.visit_coverage(None, month.tm_year, month.tm_mon)
    assert [(g.grid, g.households, g.visited) for g in coverage.grids] == [(WORKER_GRID, 1, 1)]
    assert [(w.worker, w.visits, w.households) for w in coverage.workers] == [(WORKER, 1, 1)]
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.visit(patrol, home, " ", 30.2741, 120.1551)


def test_a_department_handler_does_not_see_the_base_data(relay):
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    _, zhang, _ = register_family(worker)
    handler = device(relay, HANDLER, folder)
    with pytest.raises(gs.GridsyncError.Refused):
        handler.list_persons(gs.PersonFilterRecord())
    with pytest.raises(gs.GridsyncError.Refused):
        handler.registry_counts(None)
    with pytest.raises(gs.GridsyncError.NotFound):
        handler.get_person(zhang)
    with pytest.raises(gs.GridsyncError.Refused):
        handler.register_household(WORKER_GRID, "望湖小区3号楼")
