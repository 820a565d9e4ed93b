import Foundation
import Security

/// Each device's 32-byte root key, the key `GridEngine.open` encrypts the database
/// under, kept in the iOS Keychain as a generic password (service
/// `org.gridsync.demo.device-key`, account = device id).
///
/// `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: readable once the phone has
/// been unlocked after a restart, so a patrol in the background with the screen
/// locked can still open the database; and *this device only*, so the key is in no
/// backup and no iCloud Keychain — a backup restored on another phone has the
/// database folder excluded anyway, and could not decrypt it if it had it.
///
/// One key per device id: a database kept aside after enrolling again stays readable
/// with its own key. Only a wipe deletes a key.
struct KeychainKeyStore: Sendable {
    private static let service = "org.gridsync.demo.device-key"

    enum Failure: Error {
        /// A Keychain call answered this `OSStatus`.
        case keychain(OSStatus)
        /// The system random generator failed.
        case random(OSStatus)
    }

    /// The key of `deviceId`, or nil if the Keychain has none.
    func load(deviceId: String) throws -> Data? {
        var query = baseQuery(deviceId: deviceId)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            return item as? Data
        case errSecItemNotFound:
            return nil
        default:
            throw Failure.keychain(status)
        }
    }

    /// Keep `key` for `deviceId`, replacing any other.
    func save(_ key: Data, deviceId: String) throws {
        var item = baseQuery(deviceId: deviceId)
        item[kSecValueData as String] = key
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        var status = SecItemAdd(item as CFDictionary, nil)
        if status == errSecDuplicateItem {
            let update: [String: Any] = [
                kSecValueData as String: key,
                kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            ]
            status = SecItemUpdate(baseQuery(deviceId: deviceId) as CFDictionary, update as CFDictionary)
        }
        guard status == errSecSuccess else { throw Failure.keychain(status) }
    }

    /// Forget the key of `deviceId` (its data was erased, or never committed).
    func delete(deviceId: String) {
        _ = SecItemDelete(baseQuery(deviceId: deviceId) as CFDictionary)
    }

    /// A fresh random root key.
    static func newKey() throws -> Data {
        var bytes = [UInt8](repeating: 0, count: 32)
        let status = SecRandomCopyBytes(kSecRandomDefault, bytes.count, &bytes)
        guard status == errSecSuccess else { throw Failure.random(status) }
        return Data(bytes)
    }

    private func baseQuery(deviceId: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: Self.service,
            kSecAttrAccount as String: deviceId,
        ]
    }
}
