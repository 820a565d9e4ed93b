import CoreLocation
import Foundation
import Observation

/// A patrol just ended, for the summary on the patrol screen.
struct EndedPatrol: Sendable {
    var duration: TimeInterval
    var points: UInt64
}

/// The patrol (巡查) in progress. It lives as long as the session, not the screen:
/// a patrol goes on while the worker reports a case or looks at the list, and after
/// the app is relaunched (the running patrol id is kept in `UserDefaults`).
///
/// Fixes are buffered and written with `addTrackPoints` every 20 fixes or 30
/// seconds, when the app goes to the background, and when the patrol ends; a failed
/// write keeps its points for the next try.
@MainActor
@Observable
final class PatrolViewModel {
    private(set) var active: ActivePatrol?
    private(set) var recordedPoints: UInt64 = 0
    private(set) var pendingPoints = 0
    private(set) var lastAccuracy: Double?
    private(set) var authorization: CLAuthorizationStatus
    private(set) var isBusy = false
    private(set) var lastEnded: EndedPatrol?
    var errorMessage: String?

    /// Called after a patrol ends (the session syncs then).
    @ObservationIgnored var onEnded: (() -> Void)?

    @ObservationIgnored private var pending: [TrackPointRecord] = []
    @ObservationIgnored private var lastFlush = Date()
    @ObservationIgnored private var isFlushing = false

    private let engine: EngineClient
    private let location: LocationService
    private let store: DeviceStore
    private let deviceId: String

    /// "一日双巡": two patrols a day, each at least two hours.
    nonisolated static let targetDuration: TimeInterval = 2 * 60 * 60
    private static let flushEvery = 20
    private static let flushInterval: TimeInterval = 30
    private static let batchSize = 500
    private static let maxPending = 5000

    init(engine: EngineClient, location: LocationService, store: DeviceStore, deviceId: String) {
        self.engine = engine
        self.location = location
        self.store = store
        self.deviceId = deviceId
        self.authorization = location.authorization
    }

    var isActive: Bool { active != nil }

    var locationDenied: Bool {
        authorization == .denied || authorization == .restricted
    }

    /// Pick up a patrol that was running when the app last stopped.
    func resumeIfNeeded() {
        location.onAuthorizationChange = { [weak self] status in
            self?.authorization = status
        }
        guard active == nil, let saved = store.loadActivePatrol(deviceId: deviceId) else { return }
        active = saved
        beginTracking()
        Task { await self.refreshRecordedPoints() }
    }

    func start() async {
        guard active == nil, !isBusy else { return }
        errorMessage = nil
        location.requestPermission()
        isBusy = true
        defer { isBusy = false }
        do {
            let id = try await engine.startPatrol()
            let patrol = ActivePatrol(patrolId: id, startedAt: Date())
            store.saveActivePatrol(patrol, deviceId: deviceId)
            active = patrol
            recordedPoints = 0
            lastAccuracy = nil
            lastEnded = nil
            beginTracking()
        } catch {
            errorMessage = ErrorText.message(error)
        }
    }

    func end() async {
        guard let patrol = active, !isBusy else { return }
        isBusy = true
        defer { isBusy = false }
        errorMessage = nil
        location.stopContinuous()
        while isFlushing {
            try? await Task.sleep(for: .milliseconds(50))
        }
        await flush(all: true)
        guard pending.isEmpty else {
            // The points could not be written: keep the patrol open rather than lose them.
            beginTracking()
            return
        }
        do {
            try await engine.endPatrol(patrolId: patrol.patrolId)
        } catch {
            if !Self.isNotFound(error) {
                errorMessage = ErrorText.message(error)
                beginTracking()
                return
            }
            // NotFound: the patrol is no longer on this device; nothing left to end.
        }
        let points = (try? await engine.patrolTrackLength(patrolId: patrol.patrolId)) ?? recordedPoints
        lastEnded = EndedPatrol(duration: Date().timeIntervalSince(patrol.startedAt), points: points)
        active = nil
        pendingPoints = 0
        store.saveActivePatrol(nil, deviceId: deviceId)
        onEnded?()
    }

    /// Write buffered points now (the app is going to the background).
    func flushNow() {
        Task { await self.flush(all: true) }
    }

    /// Stop GPS without ending the patrol (the session is closing).
    func suspendTracking() {
        location.stopContinuous()
    }

    // MARK: Private

    private func beginTracking() {
        location.startContinuous { [weak self] fixes in
            self?.receive(fixes)
        }
    }

    private func receive(_ fixes: [LocationFix]) {
        guard active != nil else { return }
        lastAccuracy = fixes.last?.accuracy
        pending.append(contentsOf: fixes.map(\.trackPoint))
        if pending.count > Self.maxPending {
            pending.removeFirst(pending.count - Self.maxPending)
        }
        pendingPoints = pending.count
        if pending.count >= Self.flushEvery || Date().timeIntervalSince(lastFlush) >= Self.flushInterval {
            Task { await self.flush(all: false) }
        }
    }

    private func flush(all: Bool) async {
        guard let patrol = active, !isFlushing else { return }
        isFlushing = true
        defer {
            isFlushing = false
            pendingPoints = pending.count
        }
        repeat {
            guard !pending.isEmpty else { break }
            let batch = Array(pending.prefix(Self.batchSize))
            pending.removeFirst(batch.count)
            lastFlush = Date()
            do {
                try await engine.addTrackPoints(patrolId: patrol.patrolId, points: batch)
                recordedPoints += UInt64(batch.count)
            } catch {
                pending.insert(contentsOf: batch, at: 0)
                errorMessage = ErrorText.message(error)
                return
            }
        } while all
    }

    private func refreshRecordedPoints() async {
        guard let patrol = active else { return }
        if let count = try? await engine.patrolTrackLength(patrolId: patrol.patrolId) {
            recordedPoints = count
        }
    }

    private static func isNotFound(_ error: Error) -> Bool {
        if let error = error as? GridsyncError, case .NotFound = error { return true }
        return false
    }
}
