"""Places through the Python bindings, as a grid worker's places screen uses them:
a building and a rented flat in it, the household living there and its tenants, a
shop with the organisation running it (a mistyped credit code refused), a safety
inspection on patrol that fails and then passes, and a case reported about the shop
that takes its location and is found by the dispatcher's phone after a sync."""

import asyncio
import tempfile

import pytest

import gridsync_ffi as gs

from support import DISPATCHER, WORKER, device, relay  # noqa: F401 (relay is a fixture)

HANDLER = "h-water-1"
WORKER_GRID = "339901001001001"
# GB 32100-2015's worked example; the same with its check character changed.
CREDIT_CODE = "91350100M000100Y43"
MISTYPED_CREDIT_CODE = "91350100M000100Y44"
SHOP_AT = (30.2745, 120.1553)
SHOP_ADDRESS = "望湖小区3号楼底商1号"


def register_block(worker):
    """A building, a rented flat in it with a household of two living there, and a
    shop on its ground floor run by a registered person."""
    building = worker.register_place(gs.NewPlaceRecord(
        kind=gs.PlaceKind.BUILDING, name="3号楼", address="望湖小区3号楼",
        lat=30.2741, lon=120.1551))
    flat = worker.register_place(gs.NewPlaceRecord(
        kind=gs.PlaceKind.DWELLING, name="3号楼2单元501", address="望湖小区3号楼2单元501",
        within_id=building, occupancy=gs.Occupancy.RENTED))
    home = worker.register_household(None, "望湖小区3号楼2单元501")
    worker.household_lives_at(home, flat)
    tenants = [
        worker.register_person(gs.NewPersonRecord(
            name=name, household=gs.MembershipRecord(household_id=home, relation=relation)))
        for name, relation in (("赵磊", "户主"), ("孙丽", "配偶"))
    ]
    owner = worker.register_person(gs.NewPersonRecord(name="钱进"))
    shop = worker.register_place(gs.NewPlaceRecord(
        kind=gs.PlaceKind.SHOP, name="平安超市", address=SHOP_ADDRESS,
        within_id=building, lat=SHOP_AT[0], lon=SHOP_AT[1],
        org=gs.OrgFactsRecord(org_type="零售", credit_code=CREDIT_CODE, contact_id=owner)))
    return building, flat, home, tenants, owner, shop


def test_a_rented_flat_its_tenants_and_the_grids_counts(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    building, flat, home, tenants, owner, shop = register_block(worker)

    assert worker.get_household(home).place_id == flat
    # The tenants are the persons of the households living in the flat; nobody
    # lives in the building itself, and the shop's contact is no tenant.
    assert sorted(r.id for r in worker.list_persons(gs.PersonFilterRecord(place_id=flat))) == sorted(tenants)
    assert worker.list_persons(gs.PersonFilterRecord(place_id=building)) == []

    flat_detail = worker.get_place(flat)
    assert (flat_detail.kind, flat_detail.within_id, flat_detail.occupancy) == (
        gs.PlaceKind.DWELLING, building, gs.Occupancy.RENTED)
    assert (flat_detail.lat, flat_detail.lon, flat_detail.org) == (None, None, None)
    assert (flat_detail.grid, flat_detail.created_by) == (WORKER_GRID, WORKER)

    # The lists a places screen offers.
    assert [p.id for p in worker.list_places(gs.PlaceFilterRecord(within_id=building))] == [flat, shop]
    assert [p.id for p in worker.list_places(gs.PlaceFilterRecord(occupancy=gs.Occupancy.RENTED))] == [flat]
    assert [p.id for p in worker.list_places(gs.PlaceFilterRecord(kind=gs.PlaceKind.BUILDING))] == [building]
    assert [p.id for p in worker.list_places(gs.PlaceFilterRecord(text="平安"))] == [shop]
    row = worker.list_places(gs.PlaceFilterRecord(kind=gs.PlaceKind.SHOP))[0]
    assert (row.name, row.org_type, row.lat, row.lon, row.last_inspection) == (
        "平安超市", "零售", SHOP_AT[0], SHOP_AT[1], None)

    [grid] = worker.registry_counts(None)
    assert grid.places == gs.PlaceCountsRecord(
        places=3, rented=1, tenant_households=1, tenants=2, organisations=1)
    assert (grid.persons, grid.households) == (3, 1)

    # The flat is let no more: it has no tenants to count.
    worker.edit_place(flat, gs.PlaceEditRecord(occupancy=gs.Occupancy.OWNER_OCCUPIED))
    [grid] = worker.registry_counts(None)
    assert (grid.places.rented, grid.places.tenant_households, grid.places.tenants) == (0, 0, 0)
    # The household moves out of any registered dwelling.
    worker.household_lives_at(home, None)
    assert worker.get_household(home).place_id is None
    assert worker.list_persons(gs.PersonFilterRecord(place_id=flat)) == []

    assert [k.label_zh for k in gs.place_kinds()] == ["楼栋", "房屋", "商铺", "企业", "其他"]
    assert [(o.occupancy, o.label_zh) for o in gs.occupancies()] == [
        (gs.Occupancy.OWNER_OCCUPIED, "自住"), (gs.Occupancy.RENTED, "出租"), (gs.Occupancy.VACANT, "空置")]


def test_a_shops_organisation_and_what_is_refused(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    building, flat, home, tenants, owner, shop = register_block(worker)

    org = worker.get_place(shop).org
    assert org == gs.OrgFactsRecord(org_type="零售", credit_code=CREDIT_CODE, contact_id=owner)

    with pytest.raises(gs.GridsyncError.InvalidInput) as refused:
        worker.register_place(gs.NewPlaceRecord(
            kind=gs.PlaceKind.SHOP, name="好运来饭店", address="望湖小区3号楼底商2号",
            org=gs.OrgFactsRecord(org_type="餐饮", credit_code=MISTYPED_CREDIT_CODE)))
    assert "credit code" in str(refused.value) and "check character" in str(refused.value)
    with pytest.raises(gs.GridsyncError.InvalidInput) as refused:
        worker.register_place(gs.NewPlaceRecord(
            kind=gs.PlaceKind.SHOP, name="好运来饭店", address="望湖小区3号楼底商2号",
            org=gs.OrgFactsRecord(org_type="餐饮", credit_code="9135")))
    assert "18" in str(refused.value)
    # Occupancy is a dwelling's; an organisation a shop's or an enterprise's.
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.register_place(gs.NewPlaceRecord(
            kind=gs.PlaceKind.SHOP, name="好运来饭店", address="望湖小区3号楼底商2号",
            occupancy=gs.Occupancy.RENTED))
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.register_place(gs.NewPlaceRecord(
            kind=gs.PlaceKind.DWELLING, name="502", address="望湖小区3号楼2单元502",
            org=gs.OrgFactsRecord(org_type="餐饮")))
    # Half a position, and a building that is not a place.
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.register_place(gs.NewPlaceRecord(
            kind=gs.PlaceKind.OTHER, name="广场", address="望湖小区中心广场", lat=30.27))
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.register_place(gs.NewPlaceRecord(
            kind=gs.PlaceKind.DWELLING, name="502", address="望湖小区3号楼2单元502",
            within_id=home))
    assert len(worker.list_places(gs.PlaceFilterRecord())) == 3

    # An edit: a new code typed in lower case is stored as the standard writes it;
    # a mistyped one changes nothing; blank clears it; organisation facts stay a
    # shop's.
    worker.edit_place(shop, gs.PlaceEditRecord(credit_code="91110000100000379x", org_type="便利店"))
    assert worker.get_place(shop).org == gs.OrgFactsRecord(
        org_type="便利店", credit_code="91110000100000379X", contact_id=owner)
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.edit_place(shop, gs.PlaceEditRecord(credit_code=MISTYPED_CREDIT_CODE))
    assert worker.get_place(shop).org.credit_code == "91110000100000379X"
    worker.edit_place(shop, gs.PlaceEditRecord(credit_code=" ", contact_id=""))
    assert worker.get_place(shop).org == gs.OrgFactsRecord(org_type="便利店", credit_code=None, contact_id=None)
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.edit_place(flat, gs.PlaceEditRecord(org_type="餐饮"))
    worker.edit_place(shop, gs.PlaceEditRecord(clear_location=True, name="平安便利店"))
    detail = worker.get_place(shop)
    assert (detail.name, detail.lat, detail.lon, detail.address) == ("平安便利店", None, None, SHOP_ADDRESS)

    # A department handler sees no places.
    handler = device(relay, HANDLER, tempfile.mkdtemp())
    with pytest.raises(gs.GridsyncError.Refused):
        handler.list_places(gs.PlaceFilterRecord())
    with pytest.raises(gs.GridsyncError.NotFound):
        handler.get_place(shop)


def test_an_inspection_on_patrol_fails_and_then_passes(relay):
    worker = device(relay, WORKER, tempfile.mkdtemp())
    building, flat, home, tenants, owner, shop = register_block(worker)
    patrol = worker.start_patrol()

    worker.inspect(patrol, shop, False, "安全出口被货物堵塞，灭火器过期", *SHOP_AT)
    # A failed inspection says what failed.
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.inspect(patrol, shop, False, " ", *SHOP_AT)
    [row] = worker.list_places(gs.PlaceFilterRecord(kind=gs.PlaceKind.SHOP))
    assert row.last_inspection.passed is False
    worker.inspect(patrol, shop, True, "", *SHOP_AT)

    inspections = worker.get_place(shop).inspections
    assert [(i.passed, i.findings, i.patrol_id, i.by) for i in inspections] == [
        (False, "安全出口被货物堵塞，灭火器过期", patrol, WORKER),
        (True, "", patrol, WORKER),
    ]
    assert inspections[0].at_ms <= inspections[1].at_ms
    [row] = worker.list_places(gs.PlaceFilterRecord(kind=gs.PlaceKind.SHOP))
    assert row.last_inspection == gs.LastInspectionRecord(at_ms=inspections[1].at_ms, passed=True)

    # The patrol's check-ins name the place, not what the inspection found.
    checkins = worker.get_patrol(patrol).checkins
    assert [(c.place_id, c.household_id, c.lat, c.lon) for c in checkins] == [
        (shop, None, *SHOP_AT), (shop, None, *SHOP_AT)]
    # (str, not repr: the generated records' repr shows no fields.)
    assert [c.place for c in checkins] == ["安全检查", "安全检查"]
    assert not any("堵塞" in str(c) for c in checkins)
    assert "堵塞" in str(inspections[0])

    worker.end_patrol(patrol)
    with pytest.raises(gs.GridsyncError.InvalidInput) as refused:
        worker.inspect(patrol, shop, True, "", *SHOP_AT)
    assert "ended" in str(refused.value)
    assert len(worker.get_place(shop).inspections) == 2


def test_a_case_about_a_place_reaches_the_dispatcher(relay):
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    dispatcher = device(relay, DISPATCHER, folder)
    building, flat, home, tenants, owner, shop = register_block(worker)

    # No coordinates of its own: the case is where the shop is.
    case_id = worker.report_case(gs.NewCaseRecord(
        title="占道经营", description="货物堆到人行道上", category="city", subcategory=None,
        severity="normal", grid=None, lat=None, lon=None, address="", photos=[],
        place_id=shop, person_ids=[owner]))
    case = worker.get_case(case_id)
    assert (case.place_id, case.person_ids) == (shop, [owner])
    assert case.location == gs.LocationRecord(lat=SHOP_AT[0], lon=SHOP_AT[1], address=SHOP_ADDRESS)
    # A case without links is as before.
    other = worker.report_case(gs.NewCaseRecord(
        title="路灯损坏", description="", category="city", subcategory=None,
        severity="normal", grid=None, lat=30.28, lon=120.16, address="幸福路", photos=[]))
    assert (worker.get_case(other).place_id, worker.get_case(other).person_ids) == (None, [])

    assert [c.id for c in worker.list_cases(gs.CaseFilterRecord(about=shop))] == [case_id]
    assert [c.id for c in worker.list_cases(gs.CaseFilterRecord(about=owner))] == [case_id]
    assert worker.list_cases(gs.CaseFilterRecord(about=flat)) == []

    # Links are checked: a person's id is not a place, a place is not a person.
    for bad in (dict(place_id=owner), dict(person_ids=[shop]), dict(place_id="place-1"),
                dict(person_ids=[owner, owner])):
        with pytest.raises(gs.GridsyncError.InvalidInput):
            worker.report_case(gs.NewCaseRecord(
                title="占道经营", description="", category="city", subcategory=None,
                severity="normal", grid=None, lat=None, lon=None, address="", photos=[], **bad))
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.list_cases(gs.CaseFilterRecord(about="shop-1"))

    asyncio.run(worker.sync(None))
    assert worker.pending_changes() == 0
    assert worker.rejected_changes() == []
    asyncio.run(dispatcher.sync(None))
    found = dispatcher.list_cases(gs.CaseFilterRecord(about=shop))
    assert [c.id for c in found] == [case_id]
    assert [c.id for c in dispatcher.list_cases(gs.CaseFilterRecord(about=owner))] == [case_id]
    arrived = dispatcher.get_case(case_id)
    assert (arrived.place_id, arrived.person_ids) == (shop, [owner])
    assert arrived.location == case.location
    # The community's dispatcher keeps the grid's places too: the shop, and the
    # rental figures of the grid.
    assert dispatcher.get_place(shop).org.credit_code == CREDIT_CODE
    assert [c.places for c in dispatcher.registry_counts(None)] == [gs.PlaceCountsRecord(
        places=3, rented=1, tenant_households=1, tenants=2, organisations=1)]


def test_points_for_the_month_follow_reports_and_inspections(relay):
    """积分 as the worker's phone and her dispatcher's show them: the sample
    directory gives 2 a valid report and 2 an inspection; a leader's adjustment
    adds to them."""
    import datetime
    folder = tempfile.mkdtemp()
    worker = device(relay, WORKER, folder)
    dispatcher = device(relay, DISPATCHER, folder)
    building, flat, home, tenants, owner, shop = register_block(worker)
    patrol = worker.start_patrol()
    worker.inspect(patrol, shop, True, "", *SHOP_AT)
    worker.report_case(gs.NewCaseRecord(
        title="占道经营", description="", category="city", subcategory=None,
        severity="normal", grid=None, lat=None, lon=None, address="", photos=[],
        place_id=shop))
    now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8)))
    [mine] = worker.points(None, now.year, now.month)
    assert (mine.worker, mine.valid_reports, mine.inspections, mine.points) == (WORKER, 1, 1, 4)
    asyncio.run(worker.sync(None))
    asyncio.run(dispatcher.sync(None))
    assert [p.points for p in dispatcher.points(None, now.year, now.month)] == [4]
    with pytest.raises(gs.GridsyncError.InvalidInput):
        worker.points(None, now.year, 13)
    # 积分调整: her dispatcher adds 3 with a reason; it reaches her phone, and she
    # cannot adjust her own.
    dispatcher.adjust_points(WORKER, now.year, now.month, 3, "协助处置火情")
    with pytest.raises(gs.GridsyncError.Refused):
        worker.adjust_points(WORKER, now.year, now.month, 100, "自己加分")
    with pytest.raises(gs.GridsyncError.InvalidInput):
        dispatcher.adjust_points(WORKER, now.year, now.month, 3, " ")
    asyncio.run(dispatcher.sync(None))
    asyncio.run(worker.sync(None))
    [mine] = worker.points(None, now.year, now.month)
    assert (mine.computed, mine.adjusted, mine.points) == (4, 3, 7)
    [adjustment] = worker.points_adjustments(None, now.year, now.month)
    assert (adjustment.points, adjustment.reason, adjustment.by) == (3, "协助处置火情", DISPATCHER)
    assert adjustment.month == f"{now.year:04}-{now.month:02}"
