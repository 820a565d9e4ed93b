import Foundation
import Observation

/// 我的积分: the signed-in grid worker's points for one month (China time, the zone
/// the engine counts months in), the counts behind them and the leaders' adjustments
/// with their reasons and names. Reloaded when `watch` reports a change (a report
/// here, adjustments or decisions a sync brought) and after every sync (a newer
/// directory may change the rules or the leaders' names).
@MainActor
@Observable
final class PointsViewModel {
    /// One leader's adjustment as the screen lists it.
    struct Adjustment: Identifiable, Equatable {
        let id: String
        let points: Int32
        let reason: String
        /// The leader's name from the directory, or the user id when it does not know her.
        let byName: String
        let atMs: Int64
    }

    private(set) var year: Int32
    private(set) var month: UInt32
    /// Nil before the first load and when this user earns no points (`isEmpty`);
    /// zeros for a month with nothing.
    private(set) var totals: WorkerPointsRecord?
    private(set) var adjustments: [Adjustment] = []
    private(set) var hasLoaded = false
    private(set) var errorMessage: String?

    /// Nothing to show: the directory awards no points, or this user is not a grid worker.
    var isEmpty: Bool { hasLoaded && totals == nil && errorMessage == nil }

    @ObservationIgnored private var reloadTask: Task<Void, Never>?
    /// What the directory says, read once and again after each sync: whether this
    /// user earns points, and the staff's names.
    @ObservationIgnored private var staff: (earnsPoints: Bool, names: [String: String])?
    private let engine: EngineClient
    private let userId: String
    private let watch = DocumentsWatch()

    static let chinaTime = TimeZone(secondsFromGMT: 8 * 3600)!

    init(engine: EngineClient, userId: String, now: Date = Date()) {
        self.engine = engine
        self.userId = userId
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = Self.chinaTime
        let parts = calendar.dateComponents([.year, .month], from: now)
        year = Int32(parts.year!)
        month = UInt32(parts.month!)
    }

    /// The screen is shown: watch for changes and load.
    func appear() {
        watch.start(engine: engine) { [weak self] _ in
            self?.scheduleReload(after: .milliseconds(300))
        }
        scheduleReload(after: .zero)
    }

    /// The screen is gone: release the watch handle, which stops the notifications.
    func disappear() {
        watch.stop()
        reloadTask?.cancel()
    }

    /// A sync finished: the rules or the leaders' names may have changed with it.
    func synced() {
        staff = nil
        scheduleReload(after: .zero)
    }

    func previousMonth() { show(offset: -1) }

    func nextMonth() { show(offset: 1) }

    private func show(offset: Int32) {
        let index = year * 12 + Int32(month) - 1 + offset
        year = index / 12
        month = UInt32(index % 12) + 1
        totals = nil
        adjustments = []
        hasLoaded = false
        scheduleReload(after: .zero)
    }

    func reload() async {
        let (year, month) = (self.year, self.month)
        do {
            let staff = try await self.staff ?? readStaff()
            self.staff = staff
            let mine = try await engine.points(year: year, month: month).first { $0.worker == userId }
            let names = staff.names
            let adjustments = try await engine.pointsAdjustments(year: year, month: month)
                .filter { $0.worker == userId }
                .map { Adjustment(id: $0.id, points: $0.points, reason: $0.reason,
                                  byName: names[$0.by] ?? $0.by, atMs: $0.atMs) }
            // Only the answer for the month shown may land.
            guard year == self.year, month == self.month else { return }
            totals = staff.earnsPoints ? mine ?? Self.nothing(worker: userId) : nil
            self.adjustments = adjustments
            errorMessage = nil
        } catch {
            errorMessage = ErrorText.message(error)
        }
        hasLoaded = true
    }

    /// Only grid workers earn points, and only when the directory has points rules.
    private func readStaff() async throws -> (earnsPoints: Bool, names: [String: String]) {
        let directory = try await engine.directory()
        let role = directory.users.first { $0.id == userId }?.role
        let names = Dictionary(directory.users.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        return (directory.pointsRules != nil && role == "grid_worker", names)
    }

    /// A month in which she earned nothing and no leader adjusted anything.
    private static func nothing(worker: String) -> WorkerPointsRecord {
        WorkerPointsRecord(
            worker: worker, validReports: 0, handledOnTheSpot: 0, majorCases: 0, invalidReports: 0,
            visits: 0, inspections: 0, computed: 0, adjusted: 0, points: 0)
    }

    /// Coalesce bursts (a sync reports every page it applies) into one reload.
    private func scheduleReload(after delay: Duration) {
        reloadTask?.cancel()
        reloadTask = Task { [weak self] in
            if delay > .zero {
                try? await Task.sleep(for: delay)
            }
            guard !Task.isCancelled, let self else { return }
            await self.reload()
        }
    }
}
