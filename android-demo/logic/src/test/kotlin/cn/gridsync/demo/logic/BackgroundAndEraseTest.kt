// What runs without a screen and what erases a phone: the background sync the
// Android SyncWorker runs (a cold process restores the device first; an
// unreachable server is a retry; a revoked device is erased on the one erase path),
// and the user's 退出并清除. Against a real `gridsync serve`, through the logic layer.
package cn.gridsync.demo.logic

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

@Timeout(120)
class BackgroundAndEraseTest {
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

    private suspend fun report(phone: Phone, title: String): String {
        val vm = ReportViewModel(phone.repo, phone.scope)
        vm.onTitleChange(title)
        vm.onCategoryChange("city")
        vm.onSubcategoryChange("city.streetlight")
        vm.submit().join()
        return present(vm.state.value.reportedCaseId, "${vm.state.value.notice}")
    }

    private suspend fun dispatcherCases(): List<String> {
        val dispatcher = phone()
        dispatcher.enroll(DISPATCHER)
        SyncViewModel(dispatcher.repo, dispatcher.connectivity, dispatcher.scope).syncNow().join()
        return dispatcher.repo.listCases(null).map { it.id }
    }

    private fun assertErased(phone: Phone, deviceId: String, cause: EraseCause) {
        assertEquals(cause, phone.repo.erased.value)
        assertNull(phone.repo.session.value)
        assertTrue(phone.keys.devices.isEmpty(), "the key is deleted from the key store")
        assertEquals(emptyList<String>(), phone.engineFiles(deviceId), "database, journals and photos erased")
        for (key in DEVICE_SETTINGS) assertNull(phone.settings.get(key), "$key forgotten")
        assertEquals(cause.name, phone.settings.get("gridsync.erased"), "why, for the next start")
        assertTrue(phone.scheduler.cancelled.get() >= 1, "background sync cancelled")
    }

    @Test
    fun theBackgroundSyncRestoresAColdProcessDeliversAReportAndRetriesWhenTheServerIsDown() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val first = report(worker, "路灯损坏")

        // WorkManager started a process just for the worker: nothing restored yet.
        worker.restart()
        assertNull(worker.repo.session.value)
        assertEquals(BackgroundSyncOutcome.SYNCED, BackgroundSync(worker.repo, worker.scheduler).run())
        assertTrue(worker.repo.pending.value.isEmpty(), "nothing pending after the background sync")

        relay.stop()
        val second = report(worker, "井盖缺失")
        assertEquals(BackgroundSyncOutcome.RETRY, BackgroundSync(worker.repo, worker.scheduler).run())
        assertEquals(setOf(second), worker.repo.pending.value, "kept for the retry")
        relay.restart()
        assertEquals(BackgroundSyncOutcome.SYNCED, BackgroundSync(worker.repo, worker.scheduler).run())
        assertEquals(0, worker.scheduler.cancelled.get())

        assertEquals(setOf(first, second), dispatcherCases().toSet())
    }

    @Test
    fun aRevokedPhoneIsErasedByTheBackgroundSyncAndOpensAtEnrollment() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val deviceId = worker.repo.session.value!!.deviceId
        report(worker, "占道经营")
        assertTrue(worker.engineFiles(deviceId).isNotEmpty())

        worker.restart()
        relay.revoke(deviceId)
        assertEquals(BackgroundSyncOutcome.ERASED, BackgroundSync(worker.repo, worker.scheduler).run())
        assertErased(worker, deviceId, EraseCause.REVOKED)

        // The next run finds no device and cancels itself again.
        val cancelled = worker.scheduler.cancelled.get()
        assertEquals(BackgroundSyncOutcome.NOT_ENROLLED, BackgroundSync(worker.repo, worker.scheduler).run())
        assertEquals(cancelled + 1, worker.scheduler.cancelled.get())

        // The worker opens the app later: enrollment, saying why.
        worker.restart()
        val form = EnrollViewModel(worker.repo, worker.scope)
        form.restore().join()
        val shown = form.state.await("the enrollment form with its notice") { !it.busy && it.notice != null }
        assertNull(shown.session)
        assertEquals(UiMessage.DEVICE_WIPED, shown.notice?.message)
    }

    @Test
    fun signingOutErasesTheDataTheKeyAndTheSettingsAndANewEnrollmentStartsClean() = runBlocking<Unit> {
        val worker = phone()
        val enroll = worker.enroll(WORKER)
        val deviceId = worker.repo.session.value!!.deviceId
        report(worker, "占道经营")
        PatrolViewModel(worker.repo, worker.recorder, worker.scope).start().join()
        val device = DeviceViewModel(worker.repo, worker.scope)
        val before = device.state.await("two changes not synced, for the warning") { it.pendingCount == 2 }
        assertEquals(deviceId, before.session?.deviceId)

        device.signOutAndErase().join()
        assertNull(device.state.value.notice, "${device.state.value.notice}")
        assertErased(worker, deviceId, EraseCause.SIGNED_OUT)
        assertNull(worker.repo.activePatrol.value)
        val back = enroll.state.await("the enrollment form, saying why") { it.session == null && it.notice != null }
        assertEquals(UiMessage.SIGNED_OUT_ERASED, back.notice?.message)
        assertEquals("已退出，本机数据和密钥已清除。如需继续使用，请重新注册", back.notice?.zh)

        // Nothing to restore; a new code enrolls a new device with a new key, which syncs.
        worker.restart()
        assertNull(worker.repo.restore())
        worker.enroll(WORKER)
        val again = worker.repo.session.value!!.deviceId
        assertNotEquals(deviceId, again)
        assertEquals(setOf(again), worker.keys.devices)
        assertNull(worker.repo.erased.value)
        assertNull(worker.settings.get("gridsync.erased"))
        assertEquals(BackgroundSyncOutcome.SYNCED, BackgroundSync(worker.repo, worker.scheduler).run())
    }

    @Test
    fun aPhoneThatWasNeverEnrolledCancelsItsBackgroundSync() = runBlocking<Unit> {
        val phone = phone()
        assertEquals(BackgroundSyncOutcome.NOT_ENROLLED, BackgroundSync(phone.repo, phone.scheduler).run())
        assertEquals(1, phone.scheduler.cancelled.get())
    }
}
