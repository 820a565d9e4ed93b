import Foundation

/// The engine as the app reaches it. `GridEngine`'s local calls are synchronous
/// SQLite work (a few milliseconds; a photo ingest up to a second), so every one of
/// them runs on a concurrent dispatch queue of its own, never on the main thread and
/// never blocking Swift's cooperative thread pool. `sync` is async in the bindings
/// (its HTTP work runs on the Rust side's own runtime) and is awaited directly.
///
/// Only the methods the app needs are here; each is a one-line call into the
/// generated `GridEngine` (see `Generated/gridsync_ffi.swift`).
final class EngineClient: Sendable {
    private let engine: GridEngine
    private let queue = DispatchQueue(
        label: "org.gridsync.demo.engine", qos: .userInitiated, attributes: .concurrent)

    private init(engine: GridEngine) {
        self.engine = engine
    }

    /// Open (creating or migrating) the database at `path` for this user and device,
    /// encrypted under `key`, the device's 32-byte root key from the Keychain
    /// (`KeychainKeyStore`). `GridsyncError.WrongKey` if the file is encrypted under
    /// another key; it is left as it is.
    static func openDatabase(path: String, userId: String, deviceId: String, key: Data) async throws -> EngineClient {
        let engine = try await offMain {
            try GridEngine.open(path: path, userId: userId, deviceId: deviceId, key: key)
        }
        return EngineClient(engine: engine)
    }

    // MARK: Setup

    func loadDirectory(json: String) async throws {
        try await run { try $0.loadDirectory(json: json) }
    }

    /// Hand the server URL and device token to the engine, which keeps them in its
    /// database. The app keeps no other copy of the token (see README, "Secrets").
    func setServer(url: String, token: String) async throws {
        try await run { try $0.setServer(url: url, token: token) }
    }

    /// How the engine may reach its server: here, plain `http://` off the phone
    /// allowed for a test server the user confirmed. Kept in the engine's database.
    func setServerSecurity(_ security: ServerSecurityRecord) async throws {
        try await run { try $0.setServerSecurity(security: security) }
    }

    /// Erase everything the engine keeps on the phone (database, journals, photos,
    /// temporary files) and close it. The app then deletes the key (退出并清除).
    func wipe() async throws {
        try await run { try $0.wipe() }
    }

    /// Local changes the server has not acknowledged yet (what an erase would lose).
    func pendingChanges() async throws -> UInt64 {
        try await run { try $0.pendingChanges() }
    }

    /// Close the database; every later call fails with `GridsyncError.Closed`. The
    /// barrier lets calls already on the queue finish first.
    func close() async {
        let engine = self.engine
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async(flags: .barrier) {
                engine.closeStore()
                continuation.resume()
            }
        }
    }

    // MARK: Cases

    func listCases(statuses: [String], text: String?) async throws -> [CaseSummaryRecord] {
        let filter = CaseFilterRecord(statuses: statuses, text: text, limit: 200)
        return try await run { try $0.listCases(filter: filter) }
    }

    func getCase(id: String) async throws -> CaseRecord {
        try await run { try $0.getCase(caseId: id) }
    }

    /// Report a case; returns its id once it is committed on the device.
    func reportCase(_ record: NewCaseRecord) async throws -> String {
        try await run { try $0.reportCase(case: record) }
    }

    /// Take a workflow action; returns the case's new status code.
    func act(caseId: String, action: CaseAction) async throws -> String {
        try await run { try $0.act(caseId: caseId, action: action) }
    }

    func addNote(caseId: String, text: String) async throws {
        try await run { try $0.addNote(caseId: caseId, text: text) }
    }

    // MARK: Photos

    /// Run a JPEG from the camera through the capture pipeline (limits, orientation,
    /// metadata stripped, display image and thumbnail) and store it.
    func ingestPhoto(jpeg: Data) async throws -> PhotoRecord {
        try await run { try $0.ingestPhoto(bytes: jpeg, fileName: nil) }
    }

    /// A stored photo's bytes; `GridsyncError.NotFound` if it is not on this device yet.
    func photoBytes(hash: String) async throws -> Data {
        try await run { try $0.photoBytes(hash: hash) }
    }

    // MARK: Patrols

    func startPatrol() async throws -> String {
        try await run { try $0.startPatrol() }
    }

    func addTrackPoints(patrolId: String, points: [TrackPointRecord]) async throws {
        try await run { try $0.addTrackPoints(patrolId: patrolId, points: points) }
    }

    func endPatrol(patrolId: String) async throws {
        try await run { try $0.endPatrol(patrolId: patrolId) }
    }

    func patrolTrackLength(patrolId: String) async throws -> UInt64 {
        try await run { try $0.patrolTrackLen(patrolId: patrolId) }
    }

    // MARK: Points (积分)

    /// Points for a calendar month, China time: a grid worker's own row; empty when
    /// the directory awards no points.
    func points(year: Int32, month: UInt32) async throws -> [WorkerPointsRecord] {
        try await run { try $0.points(region: nil, year: year, month: month) }
    }

    /// The leaders' adjustments behind `points` for the same month, oldest first.
    func pointsAdjustments(year: Int32, month: UInt32) async throws -> [PointsAdjustmentRecord] {
        try await run { try $0.pointsAdjustments(region: nil, year: year, month: month) }
    }

    /// The directory this device holds (regions, staff, categories, points rules).
    func directory() async throws -> DirectoryRecord {
        try await run { try $0.directory() }
    }

    // MARK: Sync and change notifications

    /// Push, pull and upload photos, telling `observer` after every request.
    func sync(observer: SyncObserver) async throws -> SyncSummary {
        try await engine.sync(observer: observer)
    }

    /// Be told which documents each committed write touches until the returned handle
    /// is cancelled or released. Registering is cheap and does not touch the database.
    func watch(_ observer: DocumentsObserver) throws -> WatchHandle {
        try engine.watch(observer: observer)
    }

    // MARK: Plumbing

    private func run<T: Sendable>(
        _ body: @escaping @Sendable (GridEngine) throws -> T
    ) async throws -> T {
        let engine = self.engine
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            queue.async {
                do {
                    continuation.resume(returning: try body(engine))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private static func offMain<T: Sendable>(
        _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            DispatchQueue.global(qos: .userInitiated).async {
                do {
                    continuation.resume(returning: try body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

/// Redeem a one-time enrollment code with the relay at `serverURL`; `security`
/// allows plain `http://` off the phone for a confirmed test server.
///
/// A free function on purpose: inside a type with an `enroll` method of its own, an
/// unqualified call would find that method instead of the generated `enroll`.
func redeemEnrollmentCode(
    serverURL: String, code: String, deviceId: String, appVersion: String,
    security: ServerSecurityRecord?
) async throws -> Enrollment {
    try await enroll(
        serverUrl: serverURL, code: code, deviceId: deviceId, appVersion: appVersion, security: security)
}

/// A fresh random device id (the generated `newDeviceId`).
func makeDeviceId() -> String {
    newDeviceId()
}
