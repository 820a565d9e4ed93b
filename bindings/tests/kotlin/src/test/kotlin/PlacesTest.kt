// Places through the Kotlin bindings, as a places screen uses them: register a
// building and a shop with the organisation running it (a mistyped credit code
// refused), inspect the shop on a patrol (failed, then passed), and report a case
// about the shop that takes its location and is found by the place.

import java.nio.file.Files
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import uniffi.gridsync_ffi.*

class PlacesTest {
    private val relay = TestRelay()

    @BeforeEach
    fun startRelay() = relay.start()

    @AfterEach
    fun stopRelay() = relay.stop()

    @Test
    fun aShopIsInspectedOnPatrolAndACaseIsReportedAboutIt() {
        val worker = relay.enrolled("w-339901001001001", Files.createTempDirectory("devices").toFile()).engine
        val owner = worker.registerPerson(NewPersonRecord(name = "钱进"))
        val building = worker.registerPlace(
            NewPlaceRecord(kind = PlaceKind.BUILDING, name = "3号楼", address = "望湖小区3号楼"))
        val shop = worker.registerPlace(
            NewPlaceRecord(
                kind = PlaceKind.SHOP, name = "平安超市", address = "望湖小区3号楼底商1号",
                withinId = building, lat = 30.2745, lon = 120.1553,
                org = OrgFactsRecord(orgType = "零售", creditCode = "91350100M000100Y43", contactId = owner)))

        val refused = assertThrows(GridsyncException.InvalidInput::class.java) {
            worker.registerPlace(
                NewPlaceRecord(
                    kind = PlaceKind.SHOP, name = "好运来饭店", address = "望湖小区3号楼底商2号",
                    org = OrgFactsRecord(orgType = "餐饮", creditCode = "91350100M000100Y44")))
        }
        assertTrue(refused.reason.contains("check character"), refused.reason)
        assertEquals(listOf(shop), worker.listPlaces(PlaceFilterRecord(withinId = building)).map { it.id })

        val patrol = worker.startPatrol()
        worker.inspect(patrol, shop, false, "安全出口被货物堵塞", 30.2745, 120.1553)
        assertThrows(GridsyncException.InvalidInput::class.java) {
            worker.inspect(patrol, shop, false, "", 30.2745, 120.1553)
        }
        worker.inspect(patrol, shop, true, "", 30.2745, 120.1553)
        val place = worker.getPlace(shop)
        assertEquals(PlaceKind.SHOP, place.kind)
        assertEquals(OrgFactsRecord("零售", "91350100M000100Y43", owner), place.org)
        assertEquals(listOf(false to "安全出口被货物堵塞", true to ""), place.inspections.map { it.passed to it.findings })
        assertEquals(listOf(patrol, patrol), place.inspections.map { it.patrolId })
        assertEquals(listOf(shop, shop), worker.getPatrol(patrol).checkins.map { it.placeId })
        assertEquals(true, worker.listPlaces(PlaceFilterRecord(kind = PlaceKind.SHOP)).single().lastInspection?.passed)

        val case = worker.reportCase(
            NewCaseRecord(
                "占道经营", "货物堆到人行道上", "city", null, "normal", null, null, null, "", listOf(),
                placeId = shop, personIds = listOf(owner)))
        worker.linkCaseToPatrol(patrol, case)
        val record = worker.getCase(case)
        assertEquals(shop, record.placeId)
        assertEquals(listOf(owner), record.personIds)
        assertEquals(LocationRecord(30.2745, 120.1553, "望湖小区3号楼底商1号"), record.location)
        assertEquals(listOf(case), worker.listCases(CaseFilterRecord(about = shop)).map { it.id })
        assertEquals(listOf(case), worker.listCases(CaseFilterRecord(about = owner)).map { it.id })
        assertEquals(emptyList<String>(), worker.listCases(CaseFilterRecord(about = building)).map { it.id })
        assertThrows(GridsyncException.InvalidInput::class.java) {
            worker.reportCase(
                NewCaseRecord("占道经营", "", "city", null, "normal", null, null, null, "", listOf(), placeId = owner))
        }

        val counts = worker.registryCounts(null).single().places
        assertEquals(PlaceCountsRecord(places = 2uL, rented = 0uL, tenantHouseholds = 0uL, tenants = 0uL, organisations = 1uL), counts)
        assertNull(worker.getPlace(building).org)
    }
}
