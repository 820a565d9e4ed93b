// The enrollment form's decision from the server address alone: https:// goes
// ahead, plain http:// to this phone, the emulator's host or the LAN needs the
// user's confirmation, plain http:// anywhere else is refused.
package cn.gridsync.demo.logic

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

class ServerAddressTest {
    private fun kind(typed: String): String = when (ServerAddress.parse(typed)) {
        is ServerAddress.Secure -> "secure"
        is ServerAddress.PlainHttpLocal -> "confirm"
        is ServerAddress.PlainHttpPublic -> "refused"
        is ServerAddress.Invalid -> "invalid"
    }

    private fun assertKinds(expected: String, addresses: List<String>) {
        for (a in addresses) assertEquals(expected, kind(a), a)
    }

    @Test
    fun httpsGoesAheadWhateverTheHost() = assertKinds(
        "secure",
        listOf(
            "https://grid.example.gov.cn", "https://grid.example.gov.cn:8443/relay", "HTTPS://Grid.Example.gov.cn",
            "https://8.8.8.8:7878", "https://192.168.1.10:7878", "https://localhost:7878", "  https://town.example/  ",
        ),
    )

    @Test
    fun plainHttpToThisPhoneTheEmulatorOrTheLanNeedsConfirmation() = assertKinds(
        "confirm",
        listOf(
            "http://127.0.0.1:7878", "http://127.8.9.10", "http://localhost:7878", "http://LOCALHOST", "http://[::1]:7878",
            "http://10.0.2.2:7878", "http://10.255.255.255", "http://172.16.0.1:7878", "http://172.31.255.254",
            "http://192.168.1.10:7878/", "HTTP://192.168.0.1", "http://[fd12:3456::1]:7878", "http://[::ffff:192.168.1.2]",
        ),
    )

    @Test
    fun plainHttpAnywhereElseIsRefused() = assertKinds(
        "refused",
        listOf(
            "http://8.8.8.8:7878", "http://11.0.0.1", "http://172.15.255.255", "http://172.32.0.1", "http://192.169.0.1",
            "http://192.0.2.2:7878", "http://100.64.0.1", "http://[2001:db8::1]:7878",
            // Names: where they resolve is not known here.
            "http://grid.example.gov.cn", "http://relay.local:7878", "http://relay:7878", "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ),
    )

    @Test
    fun anythingButAnHttpUrlWithAHostIsInvalid() = assertKinds(
        "invalid",
        listOf(
            "", "192.168.1.10:7878", "ftp://192.168.1.10", "http://", "https://", "http:192.168.1.10",
            "http://user:pw@192.168.1.10", "http://192.168.1.10/?x=1", "http://192.168.1.10/#top", "http://bad host",
            "http://under_score.example",
        ),
    )

    @Test
    fun theUrlIsTrimmedWithTheSchemeInLowerCase() {
        assertEquals("http://192.168.1.10:7878", ServerAddress.parse(" HTTP://192.168.1.10:7878// ").url)
        assertEquals("https://Grid.Example/relay", ServerAddress.parse("HTTPS://Grid.Example/relay/").url)
        assertEquals(ServerAddress.PlainHttpLocal("http://10.0.2.2:7878", "10.0.2.2"), ServerAddress.parse("http://10.0.2.2:7878"))
    }
}
