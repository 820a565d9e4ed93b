import Foundation
import Observation
import os

/// Sync for the session, and the view model of `SyncStatusView`. One sync at a time;
/// progress arrives from the engine's worker thread through `SyncProgressRelay` and
/// is applied on the main actor. The outcome feeds the offline indicator: a
/// `GridsyncError.Network` means the relay could not be reached, whatever the phone's
/// network path says.
@MainActor
@Observable
final class SyncModel {
    /// Why the relay will not take this device any more.
    enum AccessProblem: Equatable {
        /// The token expired or is unknown: enroll again (as a new device).
        case mustEnrollAgain
        /// The device was revoked: its data is erased.
        case revoked
    }

    private(set) var isSyncing = false
    private(set) var progress: SyncProgress?
    private(set) var lastSummary: SyncSummary?
    private(set) var lastSuccessAt: Date?
    private(set) var lastFailure: String?
    private(set) var serverUnreachable = false
    private(set) var accessProblem: AccessProblem?

    /// Told when the relay revoked the device and the engine has erased its data;
    /// awaited, so a background sync ends only after the app has erased the rest.
    @ObservationIgnored var onRevoked: (@MainActor () async -> Void)?

    private let engine: EngineClient
    private nonisolated static let log = Logger(subsystem: "org.gridsync.demo", category: "sync")

    init(engine: EngineClient) {
        self.engine = engine
    }

    /// Push, pull and upload photos now, unless a sync is already running or the
    /// relay has shut this device out. True when this call synced.
    @discardableResult
    func syncNow() async -> Bool {
        guard !isSyncing, accessProblem == nil else { return false }
        isSyncing = true
        progress = nil
        lastFailure = nil
        defer {
            isSyncing = false
            progress = nil
        }
        // The relay lives only as long as this call; holding `self` strongly is fine.
        let relay = SyncProgressRelay { progress in
            Task { @MainActor in
                self.show(progress)
            }
        }
        do {
            let summary = try await engine.sync(observer: relay)
            lastSummary = summary
            lastSuccessAt = Date()
            serverUnreachable = false
            // Counts only: never what was synced.
            let pushed = summary.pushed, pulled = summary.pulled, photos = summary.photosUploaded
            Self.log.info("sync done: pushed \(pushed, privacy: .public), pulled \(pulled, privacy: .public), photos \(photos, privacy: .public)")
            return true
        } catch let error as GridsyncError {
            switch error {
            case .Network:
                serverUnreachable = true
                lastFailure = ErrorText.message(error)
            case .Unauthorized(_, let wipe):
                serverUnreachable = false
                accessProblem = wipe ? .revoked : .mustEnrollAgain
                lastFailure = ErrorText.message(error)
                if wipe {
                    await onRevoked?()
                }
            case .Wiped:
                // The engine erased the database and photos before answering.
                serverUnreachable = false
                accessProblem = .revoked
                lastFailure = ErrorText.message(error)
                await onRevoked?()
            default:
                serverUnreachable = false
                lastFailure = ErrorText.message(error)
            }
            let kind = Self.kind(of: error)
            Self.log.error("sync failed: \(kind, privacy: .public)")
        } catch {
            lastFailure = ErrorText.message(error)
        }
        return false
    }

    private func show(_ progress: SyncProgress) {
        // A report that arrives after the sync has returned is stale.
        if isSyncing {
            self.progress = progress
        }
    }

    /// The variant name only: the reason text stays out of the log.
    private nonisolated static func kind(of error: GridsyncError) -> String {
        switch error {
        case .Network: return "network"
        case .Unauthorized: return "unauthorized"
        case .NotFound: return "not_found"
        case .Refused: return "refused"
        case .InvalidInput: return "invalid_input"
        case .Storage: return "storage"
        case .WrongKey: return "wrong_key"
        case .Wiped: return "wiped"
        case .Closed: return "closed"
        case .Other: return "other"
        }
    }
}
