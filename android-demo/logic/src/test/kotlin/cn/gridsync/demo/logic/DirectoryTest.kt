// The report form's categories come from the directory the engine holds: a category
// renamed on the server (a new directory revision imported beside the running relay)
// shows renamed in the form after the phone's next sync, the worker's choice kept.
package cn.gridsync.demo.logic

import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.fail

@Timeout(120)
class DirectoryTest {
    private lateinit var relay: Relay
    private lateinit var worker: Phone

    @BeforeEach
    fun start() {
        relay = Relay()
        worker = Phone(relay)
    }

    @AfterEach
    fun cleanUp() {
        worker.close()
        relay.close()
    }

    @Test
    fun aCategoryRenamedOnTheServerShowsRenamedInTheFormAfterASync() = runBlocking<Unit> {
        worker.enroll(WORKER)
        val form = ReportViewModel(worker.repo, worker.scope)
        val before = form.state.value.categories
        assertEquals("城市管理", before.single { it.code == "city" }.name, "the enrolled directory's name")
        assertTrue(before.single { it.code == "city" }.subcategories.any { it.code == "city.streetlight" })
        form.onCategoryChange("city")
        form.onSubcategoryChange("city.streetlight")

        val json = relay.directoryJson()
        val renamed = json.replaceFirst(Regex(""""name"\s*:\s*"城市管理""""), """"name": "市容环境"""")
        check(renamed != json) { "the city category's name was not found in the directory" }
        relay.importDirectory(renamed)

        // The relay picks the revision up within 2 s; sync until the phone has it.
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        withTimeoutOrNull(20.seconds) {
            while (form.state.value.categories.single { it.code == "city" }.name != "市容环境") {
                sync.syncNow().join()
                assertEquals(UiMessage.SYNC_DONE, sync.state.value.notice?.message, "${sync.state.value.notice}")
                delay(250)
            }
        } ?: fail("the renamed category did not reach the form: ${form.state.value.categories.map { it.name }}")

        val after = form.state.value
        assertEquals(before.map { it.code }, after.categories.map { it.code }, "the same categories, one renamed")
        assertEquals(before.filter { it.code != "city" }, after.categories.filter { it.code != "city" })
        assertEquals("city", after.category, "the worker's choice kept")
        assertEquals("city.streetlight", after.subcategory)
        assertEquals("市容环境", worker.repo.directory.value?.record?.categories?.single { it.code == "city" }?.name)
        // A form opened now offers the new name as well.
        assertEquals("市容环境", ReportViewModel(worker.repo, worker.scope).state.value.categories.first { it.code == "city" }.name)
    }
}
