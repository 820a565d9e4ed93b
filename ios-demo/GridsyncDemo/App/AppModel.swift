import Foundation
import Observation
import SwiftUI
import UIKit
import os

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
    /// The one launch in progress: the scene and a background task may both ask.
    private var launch: Task<Void, Never>?
    private nonisolated static let log = Logger(subsystem: "org.gridsync.demo", category: "app")

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

    /// Open the enrolled device, once; called by the scene and by a background
    /// refresh (which may launch the app with no scene).
    func start() async {
        if let launch {
            await launch.value
            return
        }
        let task = Task { await self.launchOnce() }
        launch = task
        await task.value
    }

    private func launchOnce() async {
        guard case .starting = phase else { return }
        connectivity.onBecameOnline = { [weak self] in
            self?.session?.syncSoon()
        }
        connectivity.start()
        guard let device = store.loadDevice() else {
            phase = .enrolling(notice: store.loadEraseCause()?.notice)
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
            await self?.erase(cause: .revoked)
        }
        phase = .ready(session)
        BackgroundSync.schedule()
        // Location updates can only start while the app is in front (the patrol has
        // "when in use" permission); a launch for a background refresh resumes the
        // patrol's tracking when the app becomes active instead.
        if UIApplication.shared.applicationState != .background {
            session.patrol.resumeIfNeeded()
            if connectivity.isOnline {
                session.syncSoon()
            }
        }
    }

    // MARK: Background refresh

    /// One sync for a `BGAppRefreshTask` (`BackgroundSync`): launch if needed, sync,
    /// and on `Wiped` erase as the sync screen does. True when the work is done (a
    /// sync, or nothing to sync); false when it should be tried again.
    func syncInBackground() async -> Bool {
        // Before the first unlock after a restart neither the Keychain key nor the
        // database folder can be read: do not launch into the open-failed screen.
        if case .starting = phase, !UIApplication.shared.isProtectedDataAvailable {
            return false
        }
        await start()
        guard let session else {
            // Not enrolled (or erased): nothing to sync, no next refresh.
            if case .enrolling = phase {
                BackgroundSync.cancel()
                return true
            }
            return false
        }
        if await session.sync.syncNow() { return true }
        if case .enrolling = phase { return true } // erased by this sync
        return false
    }

    // MARK: Enrollment

    /// Redeem a one-time code: a new device id, a new database for it, the directory
    /// and server loaded into the engine, and only then the device remembered, so a
    /// relaunch never finds a half-enrolled device.
    ///
    /// `url` has been judged by `ServerAddress` (`EnrollViewModel`); `allowPlainHttp`
    /// is true only for a plain `http://` address the user confirmed is a test server,
    /// and lets the core use it for the enrollment and, through `setServerSecurity`,
    /// for every sync after.
    func register(serverURL url: String, code rawCode: String, allowPlainHttp: Bool) async throws {
        let code = rawCode.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !code.isEmpty else { throw AppError.emptyCode }
        let security = allowPlainHttp ? ServerSecurityRecord(caPem: nil, allowPlainHttp: true) : nil
        // A fresh id for every attempt: the relay enrolls an id once, and an answer
        // lost on the way back would otherwise block every retry.
        let deviceId = makeDeviceId()
        let enrollment = try await redeemEnrollmentCode(
            serverURL: url, code: code, deviceId: deviceId, appVersion: Self.appVersion, security: security)
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
            deviceId: deviceId, userId: enrollment.user, serverURL: url, enrolledAt: Date(),
            plainHttp: allowPlainHttp)
        let facts = DirectoryFacts.parse(directoryJSON: enrollment.directoryJson, userId: enrollment.user)
        do {
            try await engine.loadDirectory(json: enrollment.directoryJson)
            // Before the server: the engine never holds a server it may not reach.
            if let security {
                try await engine.setServerSecurity(security)
            }
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

    // MARK: Leaving

    /// 退出并清除: the user leaves this phone. The engine erases its database,
    /// journals and photos (`wipe`), then the same path as a remote wipe. If the
    /// engine cannot erase its files, removing the folder does, and the key goes in
    /// any case, so whatever might remain cannot be read.
    func signOutAndErase() async {
        guard let session else { return }
        do {
            try await session.engine.wipe()
        } catch {
            Self.log.error("wipe failed; the folder is removed instead")
        }
        await erase(cause: .signedOut)
    }

    /// The one erase path, after a remote wipe (the sync screen's sync, or a
    /// background refresh) or 退出并清除: the engine's files are gone; close it,
    /// remove what is left of the folder (the directory facts, any file the engine
    /// could not remove), delete the key from the Keychain, forget the device and
    /// its patrol, stop background refreshes, and show enrollment with the reason.
    func erase(cause: EraseCause) async {
        guard let session else { return }
        let deviceId = session.device.deviceId
        phase = .starting
        await session.close()
        try? store.deleteFolder(deviceId: deviceId)
        keys.delete(deviceId: deviceId)
        store.forgetDevice(deviceId)
        store.saveEraseCause(cause)
        BackgroundSync.cancel()
        phase = .enrolling(notice: cause.notice)
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
            // A patrol still running since a launch in the background.
            session.patrol.resumeIfNeeded()
            if connectivity.isOnline {
                session.syncSoon()
            }
        case .background:
            session.patrol.flushNow()
            BackgroundSync.schedule()
        default:
            break
        }
    }
}
