import Foundation

/// Localized text for places where SwiftUI's `LocalizedStringKey` does not reach:
/// view-model messages, keys built at run time (status and action codes from the
/// engine) and formatted strings. Every argument is passed as a `String` and every
/// placeholder in `Localizable.strings` is `%@`, so a number never meets the wrong
/// format specifier.
enum L {
    /// The string for `key` in the user's language (Simplified Chinese by default).
    static func s(_ key: String) -> String {
        Bundle.main.localizedString(forKey: key, value: nil, table: nil)
    }

    /// The string for `key`, or `fallback` when the table has no such key.
    static func s(_ key: String, fallback: String) -> String {
        Bundle.main.localizedString(forKey: key, value: fallback, table: nil)
    }

    /// The string for `key` with its `%@` placeholders filled in order.
    static func f(_ key: String, _ args: String...) -> String {
        String(format: s(key), locale: Locale.current, arguments: args.map { $0 as CVarArg })
    }

    /// Whether the app is running in English (otherwise Chinese names are shown).
    static var isEnglish: Bool {
        Bundle.main.preferredLocalizations.first?.hasPrefix("en") ?? false
    }

    /// A case status (`reported`, …); the engine's Chinese label when the code is new.
    static func status(_ code: String, zh: String) -> String {
        s("status.\(code)", fallback: zh)
    }

    /// A timeline action (`report`, `verify`, …). The engine's Chinese label tells a
    /// passed verification from a failed one, which the action name alone does not.
    static func action(_ code: String, zh: String) -> String {
        if code == "verify" {
            return s(zh == "核查通过" ? "action.verify.passed" : "action.verify.failed", fallback: zh)
        }
        return s("action.\(code)", fallback: zh)
    }

    /// A role code from the directory (`grid_worker`, …).
    static func role(_ code: String) -> String {
        s("role.\(code)", fallback: code)
    }

    /// A severity code (`low`, `normal`, `high`, `urgent`).
    static func severity(_ code: String) -> String {
        s("severity.\(code)", fallback: code)
    }

    /// A sync phase (`push`, `pull`, `photos`).
    static func syncPhase(_ code: String) -> String {
        s("sync.phase.\(code)", fallback: code)
    }

    /// A timeline entry's outcome when it is not `applied`.
    static func outcome(_ code: String) -> String {
        s("timeline.outcome.\(code)", fallback: code)
    }

    /// A byte count in the user's locale ("1.2 MB").
    static func bytes(_ count: UInt64) -> String {
        ByteCountFormatter.string(fromByteCount: Int64(clamping: count), countStyle: .file)
    }

    /// Milliseconds since the epoch as a date and time in the user's locale.
    static func dateTime(ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000)
            .formatted(date: .abbreviated, time: .shortened)
    }
}
