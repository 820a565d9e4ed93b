import Foundation

/// What enrollment may do with a server address, decided from the address alone (no
/// DNS lookup, no network). The same rules as the Android demo's
/// `logic/ServerAddress.kt`, which has the unit tests:
///
/// - `https://` is `.secure`: TLS in the core (rustls), nothing to ask.
/// - `http://` to this phone (127.0.0.0/8, `localhost`, `::1`), the Android
///   emulator's host (10.0.2.2) or a private LAN address (10/8, 172.16/12,
///   192.168/16, IPv6 fc00::/7) is `.plainHttpLocal`: allowed only once the user
///   confirms it is a test server; the core is then told `allowPlainHttp: true`.
/// - `http://` to anything else is `.plainHttpPublic` and refused. A host *name*
///   other than `localhost` counts as public: where it resolves is not known here,
///   and a LAN test server can be typed as its IP address.
///
/// An address typed without a scheme is taken as `https://`. The core refuses plain
/// `http://` off the phone on its own too, unless allowed; this decides when to ask.
enum ServerAddress: Equatable {
    case secure(url: String)
    case plainHttpLocal(url: String, host: String)
    case plainHttpPublic(url: String, host: String)
    case invalid

    init(typed: String) {
        var text = typed.trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.contains("://") {
            text = "https://" + text
        }
        while text.hasSuffix("/") {
            text.removeLast()
        }
        guard let separator = text.range(of: "://"),
              let components = URLComponents(string: text),
              let rawHost = components.host, !rawHost.isEmpty,
              components.user == nil, components.password == nil,
              components.query == nil, components.fragment == nil
        else {
            self = .invalid
            return
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        let url = scheme + text[separator.lowerBound...]
        var host = rawHost
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        switch scheme {
        case "https":
            self = .secure(url: url)
        case "http":
            self = Self.isLocal(host) ? .plainHttpLocal(url: url, host: host) : .plainHttpPublic(url: url, host: host)
        default:
            self = .invalid
        }
    }

    /// The address as the app uses it (trimmed, scheme in lower case, no trailing
    /// slash), or nil when invalid.
    var url: String? {
        switch self {
        case .secure(let url), .plainHttpLocal(let url, _), .plainHttpPublic(let url, _):
            return url
        case .invalid:
            return nil
        }
    }

    /// This phone, the emulator's host, or a private network address.
    static func isLocal(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        if let v4 = ipv4(host) { return isLocal(v4: v4) }
        guard host.contains(":"), let v6 = ipv6(host) else { return false }
        // IPv4-mapped (::ffff:a.b.c.d): the IPv4 rules.
        if v6[0..<10].allSatisfy({ $0 == 0 }), v6[10] == 0xff, v6[11] == 0xff {
            return isLocal(v4: Array(v6[12..<16]))
        }
        let loopback = v6[0..<15].allSatisfy { $0 == 0 } && v6[15] == 1
        return loopback || (v6[0] & 0xfe) == 0xfc
    }

    private static func isLocal(v4 b: [UInt8]) -> Bool {
        b[0] == 127 // loopback (this phone)
            || b[0] == 10 // 10/8, which holds the Android emulator's host 10.0.2.2
            || (b[0] == 172 && (16...31).contains(b[1]))
            || (b[0] == 192 && b[1] == 168)
    }

    /// A dotted quad of decimal numbers, each at most 255; nil for anything else.
    private static func ipv4(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                  let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// The 16 bytes of an IPv6 literal (never a lookup), or nil.
    private static func ipv6(_ host: String) -> [UInt8]? {
        var address = in6_addr()
        let parsed = host.withCString { inet_pton(AF_INET6, $0, &address) }
        guard parsed == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}
