// The demo app's view-models driven as the screens drive them, against a real
// `gridsync serve` on loopback: a grid worker enrolls, patrols, reports a case with a
// photo and syncs; a community dispatcher's phone receives it; the database opens with
// the key from the key store only, and a revoked phone is erased and forgets its key.
// Nothing here calls the bindings directly: every step goes through the logic layer
// the Android app uses.
package cn.gridsync.demo.logic

import java.io.File
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

const val WORKER = "w-339901001001001"
const val DISPATCHER = "cd-339901001001"

/** Every setting the repository keeps about an enrolled device. */
val DEVICE_SETTINGS = listOf(
    "gridsync.user", "gridsync.device", "gridsync.server", "gridsync.server.plain_http",
    "gridsync.pending", "gridsync.patrol",
)

@Timeout(120)
class FieldAppTest {
    private lateinit var relay: Relay
    private val phones = mutableListOf<Phone>()

    @BeforeEach
    fun startRelay() {
        relay = Relay()
    }

    @AfterEach
    fun cleanUp() {
        phones.forEach { it.close() }
        relay.close()
    }

    private fun phone() = Phone(relay).also { phones += it }

    private suspend fun report(phone: Phone, title: String, category: String, subcategory: String, photo: ByteArray? = null): String {
        val vm = ReportViewModel(phone.repo, phone.scope)
        if (photo != null) {
            vm.attachPhoto(photo, "IMG_0001.jpg").join()
            assertEquals(1, vm.state.value.photos.size, "photo attached: ${vm.state.value.notice}")
        }
        vm.onTitleChange(title)
        vm.onCategoryChange(category)
        vm.onSubcategoryChange(subcategory)
        vm.submit().join()
        return vm.state.value.reportedCaseId ?: error("not reported: ${vm.state.value.notice}")
    }

    @Test
    fun aWorkerPatrolsAndReportsWithAPhotoAndTheDispatcherSeesTheTimeline() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        assertEquals(1, worker.scheduler.periodic.get(), "periodic background sync scheduled at enrollment")
        val list = CaseListViewModel(worker.repo, worker.scope)
        list.state.await("the empty list") { it.loaded && it.rows.isEmpty() }

        // Patrol: the location service feeds fixes while it runs; they are written in
        // batches of ten, and stopping writes the rest.
        val patrol = PatrolViewModel(worker.repo, worker.recorder, worker.scope)
        patrol.start().join()
        val active = present(patrol.state.value.active, "${patrol.state.value.notice}")
        val now = System.currentTimeMillis()
        repeat(12) { worker.recorder.onFix(GeoPoint(30.27 + it * 1e-5, 120.15, now + 5_000L * it)) }
        assertEquals(10L, worker.repo.patrolTrackLength(active.id), "one batch of ten written, two held")
        val tracking = patrol.state.await("12 points, 2 of them held") { it.points == 12L && it.buffered == 2 }
        assertEquals(active.id, tracking.active?.id)
        patrol.stop().join()
        assertNull(patrol.state.value.active)
        assertEquals(active.id, patrol.state.value.lastEnded?.id)
        assertEquals(12L, patrol.state.value.lastEnded?.points)
        assertEquals(UiMessage.PATROL_ENDED, patrol.state.value.notice?.message)
        assertEquals(1, worker.scheduler.soon.get(), "a background sync asked for after the patrol ended")
        worker.recorder.onFix(GeoPoint(30.28, 120.15, now + 70_000))
        assertEquals(12L, worker.repo.patrolTrackLength(active.id), "a fix after the end is not recorded")

        // Report with a photo from the camera.
        val form = ReportViewModel(worker.repo, worker.scope)
        form.attachPhoto(cameraPhoto(), "IMG_0001.jpg").join()
        val photo = form.state.value.photos.single()
        assertTrue(photo.width > 0 && photo.height > 0, "$photo")
        assertNotNull(form.photoBytes(photo.thumb), "the thumbnail is readable for the form")
        form.onTitleChange("消防通道被杂物堵塞")
        form.onDescriptionChange("5号楼东侧楼道")
        form.onCategoryChange("safety")
        form.onSubcategoryChange("safety.fire_exit")
        form.onSeverityChange(Severity.URGENT)
        form.onAddressChange("望湖小区5号楼")
        form.onLocation(GeoPoint(30.27, 120.15, now))
        form.submit().join()
        val caseId = present(form.state.value.reportedCaseId, "${form.state.value.notice}")
        assertEquals(UiMessage.REPORT_SAVED, form.state.value.notice?.message)
        assertEquals(2, worker.scheduler.soon.get(), "an expedited background sync asked for after the report")
        assertEquals("", form.state.value.title, "the form is cleared for the next report")
        assertTrue(form.state.value.photos.isEmpty())

        // The list follows through watch: no reload was asked for.
        val row = list.state.await("the reported case in the list, marked pending") { s ->
            s.rows.any { it.id == caseId && it.pending }
        }.rows.single { it.id == caseId }
        assertEquals("消防通道被杂物堵塞", row.title)
        assertEquals("待受理", row.statusZh)
        assertEquals(1, row.photoCount)

        // Search: two-character Chinese words.
        list.onQueryChange("漏水")
        list.state.await("no match for 漏水") { it.query == "漏水" && it.rows.isEmpty() }
        list.onQueryChange("消防")
        list.state.await("the case found by 消防") { s -> s.query == "消防" && s.rows.map { it.id } == listOf(caseId) }

        // Sync with progress; nothing pending afterwards.
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        sync.state.await("two pending documents (patrol and case)") { it.pendingCount == 2 }
        val seen = CopyOnWriteArrayList<SyncState>()
        // Unconfined and undispatched: subscribed before the sync starts, and every
        // update is seen on the thread that made it (no conflation).
        val recorder = worker.scope.launch(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
            sync.state.collect { seen += it }
        }
        sync.syncNow().join()
        recorder.cancel()
        val done = sync.state.value
        assertFalse(done.running)
        assertFalse(done.offline)
        assertEquals(UiMessage.SYNC_DONE, done.notice?.message, "${done.notice}")
        assertEquals(0, done.pendingCount)
        val result = present(done.lastResult)
        assertTrue(result.pushed >= 3, "patrol start, track, end and the report: $result")
        assertEquals(0L, result.rejected)
        assertEquals(1L, result.photosUploaded)
        val progress = present(done.progress, "progress was reported")
        assertTrue((progress.itemsByPhase[SyncPhase.PUSH] ?: 0) >= 3, "$progress")
        assertTrue((progress.itemsByPhase[SyncPhase.PHOTOS] ?: 0) >= 1, "$progress")
        assertTrue(seen.any { it.running }, "the bar showed a running sync")
        assertTrue(seen.any { it.running && it.progress?.phase == SyncPhase.PUSH }, "progress while pushing")
        list.state.await("the row no longer pending") { s -> s.rows.singleOrNull()?.pending == false }

        // The dispatcher's phone receives it.
        val dispatcher = phone()
        dispatcher.enroll(DISPATCHER)
        val dispatcherList = CaseListViewModel(dispatcher.repo, dispatcher.scope)
        dispatcherList.state.await("the dispatcher's empty list") { it.loaded && it.rows.isEmpty() }
        val dispatcherSync = SyncViewModel(dispatcher.repo, dispatcher.connectivity, dispatcher.scope)
        dispatcherSync.syncNow().join()
        assertEquals(UiMessage.SYNC_DONE, dispatcherSync.state.value.notice?.message)
        assertTrue(dispatcherSync.state.value.lastResult!!.pulled >= 1)
        dispatcherList.state.await("the case on the dispatcher's phone") { s -> s.rows.map { it.id } == listOf(caseId) }
        assertFalse(dispatcherList.state.value.rows.single().pending, "received, not changed here")

        val detail = CaseDetailViewModel(dispatcher.repo, dispatcher.scope, caseId)
        val case = detail.state.await("the case detail") { it.case != null }.case!!
        assertEquals("消防通道被杂物堵塞", case.title)
        assertEquals("5号楼东侧楼道", case.description)
        assertEquals("待受理", case.statusZh)
        assertEquals(listOf(photo.hash), case.photos.map { it.hash })
        assertEquals(listOf("发现上报"), case.timeline.map { it.labelZh })
        assertEquals("网格员", case.timeline.single().roleZh)
        assertEquals("applied", case.timeline.single().outcome)
    }

    @Test
    fun aSyncThatCannotReachTheServerShowsOfflineAndKeepsTheCasePending() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        val list = CaseListViewModel(worker.repo, worker.scope)
        relay.stop()

        val caseId = report(worker, "楼道水管漏水", "livelihood", "livelihood.water_leak")
        sync.syncNow().join()
        val offline = sync.state.value
        assertTrue(offline.offline, "$offline")
        assertFalse(offline.running)
        assertEquals(UiMessage.OFFLINE, offline.notice?.message)
        assertEquals("网络不可用，数据已保存在本机，联网后再同步", offline.notice?.zh)
        assertNull(offline.lastResult)
        assertEquals(1, offline.pendingCount)
        assertEquals(setOf(caseId), worker.repo.pending.value)
        list.state.await("the case marked pending") { s -> s.rows.singleOrNull { it.id == caseId }?.pending == true }

        // The server is back: the same sync button delivers it.
        relay.restart()
        sync.syncNow().join()
        val online = sync.state.value
        assertFalse(online.offline, "$online")
        assertEquals(UiMessage.SYNC_DONE, online.notice?.message)
        assertEquals(0, online.pendingCount)
        assertTrue(online.lastResult!!.pushed >= 1)

        val dispatcher = phone()
        dispatcher.enroll(DISPATCHER)
        SyncViewModel(dispatcher.repo, dispatcher.connectivity, dispatcher.scope).syncNow().join()
        val dispatcherList = CaseListViewModel(dispatcher.repo, dispatcher.scope)
        dispatcherList.onQueryChange("漏水")
        dispatcherList.state.await("the case delivered after the outage") { s -> s.loaded && s.rows.map { it.id } == listOf(caseId) }
    }

    @Test
    fun withoutConnectivityTheBarIsOfflineAndSyncsByItselfWhenTheNetworkReturns() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        worker.connectivity.online.value = false
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        sync.state.await("offline from connectivity") { it.offline }

        val caseId = report(worker, "路灯损坏", "city", "city.streetlight")
        sync.syncNow().join()
        assertEquals(UiMessage.OFFLINE, sync.state.value.notice?.message)
        assertNull(sync.state.value.lastResult, "no sync was attempted")
        assertEquals(1, sync.state.value.pendingCount)

        val dispatcher = phone()
        dispatcher.enroll(DISPATCHER)
        val dispatcherSync = SyncViewModel(dispatcher.repo, dispatcher.connectivity, dispatcher.scope)
        dispatcherSync.syncNow().join()
        assertTrue(dispatcher.repo.listCases(null).isEmpty(), "the case has not left the worker's phone")

        worker.connectivity.online.value = true
        val after = sync.state.await("an automatic sync when the network returns") { it.lastResult != null && !it.running }
        assertFalse(after.offline)
        assertEquals(0, after.pendingCount)
        dispatcherSync.syncNow().join()
        assertEquals(listOf(caseId), dispatcher.repo.listCases(null).map { it.id })
    }

    @Test
    fun anEmptyTitleIsRefusedByTheFormAndNothingIsReported() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val list = CaseListViewModel(worker.repo, worker.scope)
        val form = ReportViewModel(worker.repo, worker.scope)
        form.onTitleChange("   ")
        form.onDescriptionChange("没有标题的事件")
        form.submit().join()
        assertEquals(UiMessage.TITLE_REQUIRED, form.state.value.notice?.message)
        assertEquals("请填写事件标题", form.state.value.notice?.zh)
        assertNull(form.state.value.reportedCaseId)
        assertEquals("没有标题的事件", form.state.value.description, "the form keeps what was typed")

        form.onTitleChange("长".repeat(201))
        form.submit().join()
        assertEquals(UiMessage.TITLE_TOO_LONG, form.state.value.notice?.message)
        assertNull(form.state.value.reportedCaseId)

        assertTrue(worker.repo.listCases(null).isEmpty(), "nothing reached the database")
        assertTrue(worker.repo.pending.value.isEmpty())
        list.state.await("the empty list") { it.loaded && it.rows.isEmpty() }

        // The same form reports once the title is there.
        form.onTitleChange("长".repeat(200))
        form.submit().join()
        assertNotNull(form.state.value.reportedCaseId, "${form.state.value.notice}")
    }

    @Test
    fun enrollmentExplainsWhatIsWrongAndABadCodeEnrollsNothing() = runBlocking<Unit> {
        val worker = phone()
        val vm = EnrollViewModel(worker.repo, worker.scope)
        vm.submit().join()
        assertEquals(UiMessage.SERVER_URL_REQUIRED, vm.state.value.notice?.message)
        vm.onServerUrlChange("ftp://example")
        vm.onCodeChange("ABCD")
        vm.submit().join()
        assertEquals(UiMessage.SERVER_URL_INVALID, vm.state.value.notice?.message)
        vm.onServerUrlChange(relay.url)
        vm.onCodeChange(" ")
        vm.submit().join()
        assertEquals(UiMessage.CODE_REQUIRED, vm.state.value.notice?.message)

        vm.onCodeChange("ABCD-EFGH-JK")
        vm.submit().join()
        assertEquals(relay.url, vm.state.value.confirmPlainHttp, "plain HTTP on loopback: asked first")
        vm.confirmPlainHttp().join()
        assertEquals(UiMessage.CODE_REJECTED, vm.state.value.notice?.message, "${vm.state.value.notice}")
        assertNull(vm.state.value.session)
        assertNull(worker.repo.session.value)
        assertNull(worker.settings.get("gridsync.device"), "nothing persisted")

        // A real code, with spaces as typed from paper, works; a used one does not.
        val code = relay.enrollmentCode(WORKER)
        vm.onCodeChange(code.chunked(4).joinToString(" ").lowercase())
        vm.submit().join()
        assertNull(vm.state.value.confirmPlainHttp, "the same address is not asked about twice")
        assertEquals(UiMessage.ENROLLED, vm.state.value.notice?.message, "${vm.state.value.notice}")
        vm.state.await("the session") { it.session?.userId == WORKER }

        val other = phone()
        val again = EnrollViewModel(other.repo, other.scope)
        again.onServerUrlChange(relay.url)
        again.onCodeChange(code)
        again.submit().join()
        again.confirmPlainHttp().join()
        assertEquals(UiMessage.CODE_REJECTED, again.state.value.notice?.message, "a code works once")
    }

    @Test
    fun aRestartReopensTheSameDatabaseWithItsPatrolAndPendingCase() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val deviceId = worker.repo.session.value!!.deviceId
        val patrol = PatrolViewModel(worker.repo, worker.recorder, worker.scope)
        patrol.start().join()
        val patrolId = patrol.state.value.active!!.id
        val now = System.currentTimeMillis()
        repeat(3) { worker.recorder.onFix(GeoPoint(30.27, 120.15 + it * 1e-5, now + 5_000L * it)) }
        val caseId = report(worker, "占道经营", "city", "city.street_vendor")
        patrol.state.await("three fixes, held") { it.points == 3L && it.buffered == 3 }
        // The service writes what it holds when it stops (the process is going away).
        worker.recorder.flush()
        assertEquals(3L, worker.repo.patrolTrackLength(patrolId))

        worker.restart()
        assertNull(worker.repo.session.value, "a new process knows nothing until it restores")
        val enroll = EnrollViewModel(worker.repo, worker.scope)
        enroll.restore().join()
        val session = enroll.state.await("the restored session") { it.session != null }.session!!
        assertEquals(WORKER, session.userId)
        assertEquals(deviceId, session.deviceId, "the same device, so the same database")
        assertEquals(relay.url, session.serverUrl)

        val list = CaseListViewModel(worker.repo, worker.scope)
        list.state.await("the case from before the restart, still pending") { s ->
            s.rows.singleOrNull { it.id == caseId }?.pending == true
        }
        val resumed = PatrolViewModel(worker.repo, worker.recorder, worker.scope)
        resumed.state.await("the patrol resumed with its fixes") { it.active?.id == patrolId && it.points == 3L }
        worker.recorder.onFix(GeoPoint(30.27, 120.16, now + 20_000))
        resumed.stop().join()
        assertEquals(4L, resumed.state.value.lastEnded?.points)

        // The token survived in the database: the restored phone syncs.
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        sync.syncNow().join()
        assertEquals(UiMessage.SYNC_DONE, sync.state.value.notice?.message, "${sync.state.value.notice}")
        assertEquals(0, sync.state.value.pendingCount)
    }

    /** The device's database and journals, byte for byte. */
    private fun databaseFiles(phone: Phone, deviceId: String): Map<String, List<Byte>> =
        (phone.dir.listFiles() ?: emptyArray<File>())
            .filter { it.isFile && it.name.startsWith("gridsync-$deviceId.db") }
            .associate { it.name to it.readBytes().toList() }

    @Test
    fun theDatabaseOpensOnlyWithTheKeyFromTheKeyStore() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val deviceId = worker.repo.session.value!!.deviceId
        assertEquals(setOf(deviceId), worker.keys.devices, "one key, made at enrollment")
        val key = present(worker.keys.load(deviceId))
        assertEquals(32, key.size)
        val caseId = report(worker, "路灯损坏", "city", "city.streetlight")

        // The key store lost the key: the restart says so, keeps no made-up key, and
        // leaves the database as it was.
        worker.restart()
        val before = databaseFiles(worker, deviceId)
        assertTrue(before.isNotEmpty())
        worker.keys.delete(deviceId)
        val enroll = EnrollViewModel(worker.repo, worker.scope)
        enroll.restore().join()
        assertEquals(UiMessage.KEY_MISMATCH, enroll.state.value.notice?.message, "${enroll.state.value.notice}")
        assertNull(worker.repo.session.value)
        assertTrue(worker.keys.devices.isEmpty(), "no key kept that cannot open it")
        assertEquals(before, databaseFiles(worker, deviceId), "the database is untouched")

        // With its own key back, the same database opens with the case in it.
        worker.keys.save(deviceId, key)
        enroll.restore().join()
        assertEquals(deviceId, enroll.state.await("the restored session") { it.session != null }.session!!.deviceId)
        assertEquals(listOf(caseId), worker.repo.listCases(null).map { it.id })
    }

    @Test
    fun aRevokedPhoneIsErasedForgetsItsKeyAndGoesBackToEnrollment() = runBlocking<Unit> {
        val worker = phone()
        val enroll = worker.enroll(WORKER)
        val deviceId = worker.repo.session.value!!.deviceId
        report(worker, "占道经营", "city", "city.street_vendor")
        val patrol = PatrolViewModel(worker.repo, worker.recorder, worker.scope)
        patrol.start().join()
        assertNotNull(worker.repo.activePatrol.value)
        worker.recorder.onFix(GeoPoint(30.27, 120.15, System.currentTimeMillis()))
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        sync.state.await("two pending documents") { it.pendingCount == 2 }

        relay.revoke(deviceId)
        sync.syncNow().join()
        assertEquals(UiMessage.DEVICE_WIPED, sync.state.value.notice?.message, "${sync.state.value.notice}")
        assertEquals(EraseCause.REVOKED, worker.repo.erased.value)
        assertNull(worker.repo.session.value)
        assertEquals(1, worker.scheduler.cancelled.get(), "background sync cancelled")
        patrol.state.await("no patrol on the screen") { it.active == null }
        assertEquals(0L, worker.recorder.also { it.refresh() }.track.value.points, "the recorder let go of the erased patrol")
        val back = enroll.state.await("the enrollment form, saying why") { it.session == null && it.notice != null }
        assertEquals(UiMessage.DEVICE_WIPED, back.notice?.message)
        assertEquals("本设备已被指挥中心注销，本机数据已清除。如需继续使用，请重新注册", back.notice?.zh)
        assertTrue(worker.keys.devices.isEmpty(), "the key is deleted")
        assertEquals(emptyMap<String, List<Byte>>(), databaseFiles(worker, deviceId), "the engine erased the database")
        for (key in DEVICE_SETTINGS) {
            assertNull(worker.settings.get(key), "$key forgotten")
        }
        assertNull(worker.repo.activePatrol.value)
        assertTrue(worker.repo.pending.value.isEmpty())

        // A restart finds nothing to reopen, and still says why; a new code enrolls a
        // new device with a new key.
        worker.restart()
        assertNull(worker.repo.restore())
        val form = EnrollViewModel(worker.repo, worker.scope)
        assertEquals(UiMessage.DEVICE_WIPED, form.state.await("the notice after a restart") { it.notice != null }.notice?.message)
        worker.enroll(WORKER)
        val again = worker.repo.session.value!!.deviceId
        assertTrue(again != deviceId, "a new device id")
        assertEquals(setOf(again), worker.keys.devices)
        assertNull(worker.repo.erased.value)
    }
}
