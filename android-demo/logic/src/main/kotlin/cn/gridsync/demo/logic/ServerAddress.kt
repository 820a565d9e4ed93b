package cn.gridsync.demo.logic

import java.net.Inet4Address
import java.net.Inet6Address
import java.net.InetAddress
import java.net.URI
import java.net.URISyntaxException

/**
 * What the enrollment form may do with a server address, decided from the address
 * alone (no DNS lookup, no network):
 *
 * - `https://` is [Secure]: TLS in the core (rustls), nothing to ask.
 * - `http://` to this phone (127.0.0.0/8, `localhost`, `::1`), the emulator's host
 *   (10.0.2.2) or a private LAN address (10/8, 172.16/12, 192.168/16, IPv6 fc00::/7)
 *   is [PlainHttpLocal]: allowed only once the user confirms it is a test server;
 *   the core is then told `allowPlainHttp = true` for it.
 * - `http://` to anything else is [PlainHttpPublic] and refused. A host *name* other
 *   than `localhost` counts as public: where it resolves is not known here, and a
 *   LAN test server can be typed as its IP address.
 *
 * The core makes its own check too: it refuses plain `http://` off the phone unless
 * allowed (`ServerSecurityRecord.allowPlainHttp`), so this is the app's policy for
 * when to ask for that permission, not the only guard.
 */
sealed interface ServerAddress {
    /** The address as the app uses it: trimmed, scheme in lower case, no trailing slash. */
    val url: String

    /** `https://`. */
    data class Secure(override val url: String) : ServerAddress

    /** Plain `http://` to this phone, the emulator's host or a private LAN address. */
    data class PlainHttpLocal(override val url: String, val host: String) : ServerAddress

    /** Plain `http://` to a public address or a host name: refused. */
    data class PlainHttpPublic(override val url: String, val host: String) : ServerAddress

    /** Not an `http(s)://host[:port][/path]` address. */
    data class Invalid(override val url: String) : ServerAddress

    companion object {
        /** Judge an address as typed into the enrollment form. */
        fun parse(typed: String): ServerAddress {
            val text = typed.trim().trimEnd('/')
            val uri = try {
                URI(text)
            } catch (e: URISyntaxException) {
                return Invalid(text)
            }
            val scheme = uri.scheme?.lowercase() ?: return Invalid(text)
            val host = uri.host?.takeIf { it.isNotEmpty() } ?: return Invalid(text)
            // A relay address carries no credentials, query or fragment; `opaque`
            // catches `http:host` without the slashes.
            if (uri.isOpaque || uri.rawUserInfo != null || uri.rawQuery != null || uri.rawFragment != null) {
                return Invalid(text)
            }
            val url = scheme + text.substring(uri.scheme.length)
            return when (scheme) {
                "https" -> Secure(url)
                "http" -> if (isLocal(host)) PlainHttpLocal(url, host) else PlainHttpPublic(url, host)
                else -> Invalid(text)
            }
        }

        /** This phone, the emulator's host, or a private network address. */
        internal fun isLocal(host: String): Boolean {
            if (host.equals("localhost", ignoreCase = true)) return true
            val address = literalAddress(host) ?: return false
            return when (address) {
                is Inet4Address -> isLocalV4(address.address)
                is Inet6Address -> address.isLoopbackAddress || (address.address[0].toInt() and 0xfe) == 0xfc
                else -> false
            }
        }

        private fun isLocalV4(b: ByteArray): Boolean {
            val first = b[0].toInt() and 0xff
            val second = b[1].toInt() and 0xff
            return first == 127 || // loopback (this phone)
                first == 10 || // 10/8, which holds the emulator's host 10.0.2.2
                (first == 172 && second in 16..31) ||
                (first == 192 && second == 168)
        }

        private val dottedQuad = Regex("""(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})""")

        /**
         * The address when [host] is an IP literal, else null. Never a DNS lookup:
         * only a dotted quad or a bracketed IPv6 literal reaches InetAddress, which
         * parses literals without resolving them.
         */
        private fun literalAddress(host: String): InetAddress? {
            if (host.startsWith("[") && host.endsWith("]")) {
                val inner = host.substring(1, host.length - 1)
                val literal = ':' in inner && inner.all { it in '0'..'9' || it.lowercaseChar() in 'a'..'f' || it == ':' || it == '.' }
                if (!literal) return null
                return runCatching { InetAddress.getByName(inner) }.getOrNull()
            }
            val parts = dottedQuad.matchEntire(host)?.groupValues?.drop(1) ?: return null
            val bytes = parts.map { it.toInt() }
            if (bytes.any { it > 255 }) return null
            return InetAddress.getByAddress(ByteArray(4) { bytes[it].toByte() })
        }
    }
}
