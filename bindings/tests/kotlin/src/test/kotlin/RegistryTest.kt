// The grid's base data through the Kotlin bindings, as a resident screen uses it:
// register a household and its members, a list with ID and phone numbers masked, a
// detail view in full, a mistyped ID number refused without being repeated.

import java.nio.file.Files
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import uniffi.gridsync_ffi.*

class RegistryTest {
    private val relay = TestRelay()

    @BeforeEach
    fun startRelay() = relay.start()

    @AfterEach
    fun stopRelay() = relay.stop()

    @Test
    fun aListShowsNumbersMaskedAndADetailViewInFull() {
        val worker = relay.enrolled("w-339901001001001", Files.createTempDirectory("devices").toFile()).engine
        val home = worker.registerHousehold(null, "望湖小区3号楼2单元501")
        val zhang = worker.registerPerson(
            NewPersonRecord(
                name = "张建国", idNumber = "33010619900101131X", phone = "13812345678",
                household = MembershipRecord(home, "户主"), specialGroups = listOf(SpecialGroup.LOW_INCOME)))
        worker.registerPerson(NewPersonRecord(name = "李秀英", household = MembershipRecord(home, "配偶")))
        worker.setHouseholdHead(home, zhang)

        val rows = worker.listPersons(PersonFilterRecord())
        assertEquals(listOf("张建国", "李秀英"), rows.map { it.name })
        val row = rows.first { it.id == zhang }
        assertEquals("3301**********131X", row.idMasked)
        assertEquals("138****5678", row.phoneMasked)
        assertEquals(listOf(SpecialGroup.LOW_INCOME), row.specialGroups)
        assertFalse(rows.toString().contains("33010619900101131X"))
        assertFalse(rows.toString().contains("13812345678"))
        assertEquals(listOf(zhang), worker.listPersons(PersonFilterRecord(idSuffix = "131X")).map { it.id })

        val person = worker.getPerson(zhang)
        assertEquals("33010619900101131X", person.idNumber)
        assertEquals("13812345678", person.phone)
        assertEquals(Sex.MALE, person.sex)
        assertEquals("1990-01-01", person.born)
        assertEquals(MembershipRecord(home, "户主"), person.household)
        assertEquals(zhang, worker.getHousehold(home).head)

        val refused = assertThrows(GridsyncException.InvalidInput::class.java) {
            worker.registerPerson(NewPersonRecord(name = "王芳", idNumber = "330106199001011315"))
        }
        assertTrue(refused.reason.contains("校验位"), refused.reason)
        assertFalse(refused.reason.any { it.isDigit() }, refused.reason)
        assertEquals(2, worker.listPersons(PersonFilterRecord()).size)
    }
}
