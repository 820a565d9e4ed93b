// How the enrollment form and the repository choose the transport, against a real
// `gridsync serve`: https:// goes ahead, plain http:// to a local address is asked
// about first and remembered with the server, plain http:// to a public address is
// refused before anything is sent; and the core really uses plain HTTP off the
// phone only when the confirmed choice is passed on, at enrollment and after a
// restart.
package cn.gridsync.demo.logic

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertThrows
import uniffi.gridsync_ffi.GridsyncException

@Timeout(120)
class EnrollmentSecurityTest {
    private val relays = mutableListOf<Relay>()
    private val phones = mutableListOf<Phone>()

    @AfterEach
    fun cleanUp() {
        phones.forEach { it.close() }
        relays.forEach { it.close() }
    }

    private fun relay(listen: String = "127.0.0.1:0") = Relay(listen).also { relays += it }
    private fun phone(relay: Relay) = Phone(relay).also { phones += it }

    @Test
    fun plainHttpIsAskedAboutForALocalServerAndRefusedForAPublicOne() = runBlocking<Unit> {
        val relay = relay()
        val worker = phone(relay)
        val vm = EnrollViewModel(worker.repo, worker.scope)
        val code = relay.enrollmentCode(WORKER)
        vm.onCodeChange(code)

        // A public address over plain HTTP: refused, nothing sent, nothing asked.
        vm.onServerUrlChange("http://8.8.8.8:${relay.port}")
        vm.submit().join()
        assertEquals(UiMessage.PLAIN_HTTP_REFUSED, vm.state.value.notice?.message)
        assertNull(vm.state.value.confirmPlainHttp)
        assertNothingKept(worker)

        // https:// is not asked about; this relay speaks plain HTTP, so the TLS
        // handshake fails and nothing is enrolled (and the code is not used up).
        vm.onServerUrlChange(relay.url.replace("http://", "https://"))
        vm.submit().join()
        assertNull(vm.state.value.confirmPlainHttp, "https is never asked about")
        assertNotEquals(UiMessage.ENROLLED, vm.state.value.notice?.message)
        assertNothingKept(worker)

        // Loopback over plain HTTP: the dialog; "no" sends nothing.
        vm.onServerUrlChange(relay.url + "/")
        vm.submit().join()
        assertEquals(relay.url, vm.state.value.confirmPlainHttp, "asked, with the address as it will be used")
        vm.submit().join()
        assertEquals(relay.url, vm.state.value.confirmPlainHttp, "a second tap while asking does not enroll")
        assertNothingKept(worker)
        vm.cancelPlainHttp()
        assertNull(vm.state.value.confirmPlainHttp)
        assertNothingKept(worker)

        // Asked again; "yes" enrolls with the same code, and the choice is kept with the server.
        vm.submit().join()
        assertEquals(relay.url, vm.state.value.confirmPlainHttp)
        vm.confirmPlainHttp().join()
        assertEquals(UiMessage.ENROLLED, vm.state.value.notice?.message, "${vm.state.value.notice}")
        val session = vm.state.await("the session") { it.session != null }.session!!
        assertEquals(relay.url, session.serverUrl)
        assertTrue(session.plainHttp)
        assertEquals(relay.url, worker.settings.get("gridsync.server"))
        assertEquals("1", worker.settings.get("gridsync.server.plain_http"))
        val bar = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        assertTrue(bar.state.await("the bar marks the test server") { it.plainHttp }.plainHttp)

        // After a restart the session still says so.
        worker.restart()
        assertTrue(worker.repo.restore()!!.plainHttp)
    }

    @Test
    fun offThisMachineTheCoreUsesPlainHttpOnlyWithTheConfirmedChoiceAlsoAfterARestart() = runBlocking<Unit> {
        val address = machineAddress()
        assumeTrue(address != null, "this machine has no address besides loopback")
        val relay = relay("0.0.0.0:0")
        val url = "http://$address:${relay.port}"
        val worker = phone(relay)
        val code = relay.enrollmentCode(WORKER)

        // Not confirmed: the core itself refuses to send the code in clear off the phone.
        assertThrows<GridsyncException.InvalidInput> { runBlocking { worker.repo.enroll(url, code) } }
        assertNothingKept(worker)

        // Confirmed: enrollment, then a report and a sync after a restart — the engine
        // kept the choice (setServerSecurity) in its own database.
        worker.repo.enroll(url, code, allowPlainHttp = true)
        val caseId = ReportViewModel(worker.repo, worker.scope).run {
            onTitleChange("楼道水管漏水")
            onCategoryChange("livelihood")
            onSubcategoryChange("livelihood.water_leak")
            submit().join()
            present(state.value.reportedCaseId, "${state.value.notice}")
        }
        worker.restart()
        assertTrue(worker.repo.restore()!!.plainHttp)
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        sync.syncNow().join()
        assertEquals(UiMessage.SYNC_DONE, sync.state.value.notice?.message, "${sync.state.value.notice}")

        val dispatcher = phone(relay)
        dispatcher.repo.enroll("http://127.0.0.1:${relay.port}", relay.enrollmentCode(DISPATCHER))
        SyncViewModel(dispatcher.repo, dispatcher.connectivity, dispatcher.scope).syncNow().join()
        assertEquals(listOf(caseId), dispatcher.repo.listCases(null).map { it.id })
    }
}
