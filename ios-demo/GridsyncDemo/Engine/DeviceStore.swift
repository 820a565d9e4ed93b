import Foundation

/// Who this phone is: written once enrollment has fully succeeded, read at launch to
/// reopen the same database. Nothing here is secret: the device token lives only in
/// the engine's database (see README, "Secrets").
struct DeviceRecord: Codable, Equatable, Sendable {
    var deviceId: String
    var userId: String
    var serverURL: String
    var enrolledAt: Date
    /// The user confirmed at enrollment that `serverURL` is a test server reached over
    /// plain `http://` (see `ServerAddress`). The engine keeps its own copy of the
    /// choice (`setServerSecurity`); this one is for the screens.
    var plainHttp: Bool

    init(deviceId: String, userId: String, serverURL: String, enrolledAt: Date, plainHttp: Bool = false) {
        self.deviceId = deviceId
        self.userId = userId
        self.serverURL = serverURL
        self.enrolledAt = enrolledAt
        self.plainHttp = plainHttp
    }

    private enum CodingKeys: String, CodingKey {
        case deviceId, userId, serverURL, enrolledAt, plainHttp
    }

    /// Records written before `plainHttp` existed read as `false`.
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deviceId = try c.decode(String.self, forKey: .deviceId)
        userId = try c.decode(String.self, forKey: .userId)
        serverURL = try c.decode(String.self, forKey: .serverURL)
        enrolledAt = try c.decode(Date.self, forKey: .enrolledAt)
        plainHttp = try c.decodeIfPresent(Bool.self, forKey: .plainHttp) ?? false
    }
}

/// Why the device's data was erased and the app is back at enrollment.
enum EraseCause: String, Sendable {
    /// The command centre revoked the device; the engine erased its data at a sync.
    case revoked
    /// The user chose 退出并清除.
    case signedOut

    /// The notice the enrollment screen shows.
    var notice: String {
        switch self {
        case .revoked: return L.s("enroll.notice.wiped")
        case .signedOut: return L.s("enroll.notice.signedOut")
        }
    }
}

/// A patrol still running when the app was last stopped, to resume tracking.
struct ActivePatrol: Codable, Equatable, Sendable {
    var patrolId: String
    var startedAt: Date
}

/// Where the app keeps its state: small settings in `UserDefaults`, and one folder
/// per enrolled device under Application Support holding the engine's SQLite file
/// (with its photo blobs beside it) and the facts taken from the directory.
///
/// Folder: `Application Support/Gridsync/device-<deviceId>/`
/// - protected with `completeUntilFirstUserAuthentication`, so a patrol recording in
///   the background with the screen locked can still write;
/// - excluded from iCloud/iTunes backups: it holds residents' case data and the
///   device token, and a restored backup on another phone would clone this device's
///   identity, which the relay refuses.
@MainActor
struct DeviceStore {
    private let defaults: UserDefaults
    private let files = FileManager.default

    private enum Key {
        static let device = "gridsync.device"
        static let patrolPrefix = "gridsync.activePatrol."
        static let erased = "gridsync.erased"
    }

    init(defaults: UserDefaults = .standard) {
        self.defaults = defaults
    }

    // MARK: Device record

    func loadDevice() -> DeviceRecord? {
        guard let data = defaults.data(forKey: Key.device) else { return nil }
        return try? JSONDecoder().decode(DeviceRecord.self, from: data)
    }

    func saveDevice(_ record: DeviceRecord) throws {
        defaults.set(try JSONEncoder().encode(record), forKey: Key.device)
        defaults.removeObject(forKey: Key.erased)
    }

    // MARK: Erase notice

    /// Why the last device was erased, kept so enrollment can say so even when the
    /// erase happened in a background sync and the app was relaunched since.
    func loadEraseCause() -> EraseCause? {
        defaults.string(forKey: Key.erased).flatMap(EraseCause.init(rawValue:))
    }

    func saveEraseCause(_ cause: EraseCause) {
        defaults.set(cause.rawValue, forKey: Key.erased)
    }

    /// Forget the current device. Its folder stays unless `deleteFolder` is called.
    func forgetDevice(_ deviceId: String) {
        defaults.removeObject(forKey: Key.device)
        defaults.removeObject(forKey: Key.patrolPrefix + deviceId)
    }

    // MARK: Active patrol

    func loadActivePatrol(deviceId: String) -> ActivePatrol? {
        guard let data = defaults.data(forKey: Key.patrolPrefix + deviceId) else { return nil }
        return try? JSONDecoder().decode(ActivePatrol.self, from: data)
    }

    func saveActivePatrol(_ patrol: ActivePatrol?, deviceId: String) {
        if let patrol, let data = try? JSONEncoder().encode(patrol) {
            defaults.set(data, forKey: Key.patrolPrefix + deviceId)
        } else {
            defaults.removeObject(forKey: Key.patrolPrefix + deviceId)
        }
    }

    // MARK: Folders

    /// The device's folder, created (protected, not backed up) if missing.
    func folder(deviceId: String) throws -> URL {
        let root = try files.url(
            for: .applicationSupportDirectory, in: .userDomainMask,
            appropriateFor: nil, create: true
        ).appendingPathComponent("Gridsync", isDirectory: true)
        var folder = root.appendingPathComponent("device-\(deviceId)", isDirectory: true)
        if !files.fileExists(atPath: folder.path) {
            try files.createDirectory(
                at: folder, withIntermediateDirectories: true,
                attributes: [.protectionKey: FileProtectionType.completeUntilFirstUserAuthentication])
        }
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try folder.setResourceValues(values)
        return folder
    }

    /// The engine's database file for this device.
    func databasePath(deviceId: String) throws -> String {
        try folder(deviceId: deviceId).appendingPathComponent("gridsync.db").path
    }

    /// Erase everything this device holds. Only for a device the relay revoked and
    /// told to wipe, or one the user signed out of with 退出并清除: a database is
    /// never deleted for any other reason (it may hold unsynced field work).
    func deleteFolder(deviceId: String) throws {
        let folder = try folder(deviceId: deviceId)
        try files.removeItem(at: folder)
    }

    // MARK: Directory facts

    func saveFacts(_ facts: DirectoryFacts, deviceId: String) throws {
        let url = try folder(deviceId: deviceId).appendingPathComponent("facts.json")
        try JSONEncoder().encode(facts).write(to: url, options: [.atomic, .completeFileProtectionUntilFirstUserAuthentication])
    }

    func loadFacts(deviceId: String) -> DirectoryFacts? {
        guard let url = try? folder(deviceId: deviceId).appendingPathComponent("facts.json"),
              let data = try? Data(contentsOf: url)
        else { return nil }
        return try? JSONDecoder().decode(DirectoryFacts.self, from: data)
    }
}
