import Foundation
import Observation
import SwiftUI

/// The app's state: enrolling, or a `Session` with an open engine. Owns the services
/// that live as long as the app (network path, location) and the device settings.
@MainActor
@Observable
final class AppModel {
    enum Phase {
        /// Reading the settings, opening the database.
        case starting
        /// No enrolled device: show `EnrollView`, with a notice after a wipe or retire.
        case enrolling(notice: String?)
        /// Enrolled and open.
        case ready(Session)
        /// The database would not open. It is never deleted for that (it may hold
        /// unsynced work): the user can retry, or enroll again and keep it aside.
        case failed(message: String, device: DeviceRecord)
    }

    private(set) var phase: Phase = .starting
    let connectivity = Connectivity()

    private let location = LocationService()
    private let store = DeviceStore()
    private let keys = KeychainKeyStore()

    var session: Session? {
        if case .ready(let session) = phase { return session }
        return nil
    }

    /// Sent to the relay at enrollment and shown in its device list.
    static var appVersion: String {
        let version = Bundle.main.infoDictionary?["CFBundleShortVersionString"] as? String ?? "0"
        return "gridsync-ios-demo \(version)"
    }

    // MARK: Launch

    func start() async {
        guard case .starting = phase else { return }
        connectivity.onBecameOnline = { [weak self] in
            self?.session?.syncSoon()
        }
        connectivity.start()
        guard let device = store.loadDevice() else {
            phase = .enrolling(notice: nil)
            return
        }
        await open(device)
    }

    func retryOpen() async {
        guard case .failed(_, let device) = phase else { return }
        phase = .starting
        await open(device)
    }

    private func open(_ device: DeviceRecord) async {
        do {
            let path = try store.databasePath(deviceId: device.deviceId)
            let engine = try await openWithKey(path: path, device: device)
            let facts = store.loadFacts(deviceId: device.deviceId) ?? .fallback
            begin(Session(device: device, facts: facts, engine: engine, location: location, store: store))
        } catch {
            phase = .failed(message: ErrorText.message(error), device: device)
        }
    }

    /// Open with the device's key from the Keychain. A device enrolled before the
    /// database was encrypted has no key yet: one is made, and this open encrypts the
    /// plaintext database under it. On `WrongKey` the file stays as it is (it may
    /// hold unsynced work); a key made just now is not kept.
    private func openWithKey(path: String, device: DeviceRecord) async throws -> EngineClient {
        let kept = try keys.load(deviceId: device.deviceId)
        let key: Data
        if let kept {
            key = kept
        } else {
            key = try KeychainKeyStore.newKey()
            try keys.save(key, deviceId: device.deviceId)
        }
        do {
            return try await EngineClient.openDatabase(
                path: path, userId: device.userId, deviceId: device.deviceId, key: key)
        } catch let error as GridsyncError {
            if case .WrongKey = error, kept == nil {
                keys.delete(deviceId: device.deviceId)
            }
            throw error
        }
    }

    private func begin(_ session: Session) {
        session.sync.onRevoked = { [weak self] in
            guard let self else { return }
            Task { await self.wipe() }
        }
        phase = .ready(session)
        session.patrol.resumeIfNeeded()
        if connectivity.isOnline {
            session.syncSoon()
        }
    }

    // MARK: Enrollment

    /// Redeem a one-time code: a new device id, a new database for it, the directory
    /// and server loaded into the engine, and only then the device remembered, so a
    /// relaunch never finds a half-enrolled device.
    func register(serverURL rawURL: String, code rawCode: String) async throws {
        let url = try Self.normalizedServerURL(rawURL)
        let code = rawCode.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !code.isEmpty else { throw AppError.emptyCode }
        // A fresh id for every attempt: the relay enrolls an id once, and an answer
        // lost on the way back would otherwise block every retry.
        let deviceId = makeDeviceId()
        let enrollment = try await redeemEnrollmentCode(
            serverURL: url, code: code, deviceId: deviceId, appVersion: Self.appVersion)
        let path = try store.databasePath(deviceId: deviceId)
        // The key is in the Keychain before the database exists: nothing is ever
        // written under a key the app did not keep.
        let key = try KeychainKeyStore.newKey()
        try keys.save(key, deviceId: deviceId)
        let engine: EngineClient
        do {
            engine = try await EngineClient.openDatabase(
                path: path, userId: enrollment.user, deviceId: deviceId, key: key)
        } catch {
            keys.delete(deviceId: deviceId)
            throw error
        }
        let device = DeviceRecord(
            deviceId: deviceId, userId: enrollment.user, serverURL: url, enrolledAt: Date())
        let facts = DirectoryFacts.parse(directoryJSON: enrollment.directoryJson, userId: enrollment.user)
        do {
            try await engine.loadDirectory(json: enrollment.directoryJson)
            // The token goes straight into the engine's database and nowhere else.
            try await engine.setServer(url: url, token: enrollment.token)
            try store.saveFacts(facts, deviceId: deviceId)
            try store.saveDevice(device)
        } catch {
            await engine.close()
            // Nothing of this device is remembered, so its file holds no work.
            keys.delete(deviceId: deviceId)
            throw error
        }
        begin(Session(device: device, facts: facts, engine: engine, location: location, store: store))
    }

    /// `http://host:port` from what was typed; `http://` is assumed without a scheme.
    static func normalizedServerURL(_ raw: String) throws -> String {
        var text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.contains("://") {
            text = "http://" + text
        }
        while text.hasSuffix("/") {
            text.removeLast()
        }
        guard let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else { throw AppError.badServerURL }
        return text
    }

    // MARK: Leaving

    /// The relay revoked this device: the engine has erased its database and photos;
    /// close it, remove what is left of the folder (the directory facts, any file
    /// the engine could not remove), delete the key, forget the device.
    func wipe() async {
        guard let session else { return }
        await session.close()
        try? store.deleteFolder(deviceId: session.device.deviceId)
        keys.delete(deviceId: session.device.deviceId)
        store.forgetDevice(session.device.deviceId)
        phase = .enrolling(notice: L.s("enroll.notice.wiped"))
    }

    /// The token is no longer accepted: enroll again as a new device. The old
    /// database stays in its folder, untouched (it may hold work not yet synced), and
    /// its key stays in the Keychain so it can still be read.
    func enrollAgain() async {
        let deviceId: String
        switch phase {
        case .ready(let session):
            await session.close()
            deviceId = session.device.deviceId
        case .failed(_, let device):
            deviceId = device.deviceId
        case .starting, .enrolling:
            return
        }
        store.forgetDevice(deviceId)
        phase = .enrolling(notice: L.s("enroll.notice.kept"))
    }

    // MARK: App lifecycle

    func scenePhaseChanged(_ scenePhase: ScenePhase) {
        guard let session else { return }
        switch scenePhase {
        case .active:
            if connectivity.isOnline {
                session.syncSoon()
            }
        case .background:
            session.patrol.flushNow()
        default:
            break
        }
    }
}
