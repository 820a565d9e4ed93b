import Foundation
import Observation

/// The case list: `listCases` from the engine's index (it never loads a document),
/// searched as the user types (Chinese two-character words work), and reloaded when
/// `watch` reports a changed case, e.g. when a sync brings news.
@MainActor
@Observable
final class CaseListViewModel {
    enum Scope: String, CaseIterable, Identifiable {
        case all
        case open
        case closed

        var id: String { rawValue }

        /// Status codes for `CaseFilterRecord.statuses` (empty: all).
        var statuses: [String] {
            switch self {
            case .all: return []
            case .open: return ["reported", "accepted", "dispatched", "handled", "verified"]
            case .closed: return ["archived", "evaluated", "invalid"]
            }
        }
    }

    var query = ""
    var scope: Scope = .all
    private(set) var cases: [CaseSummaryRecord] = []
    private(set) var hasLoaded = false
    private(set) var errorMessage: String?

    @ObservationIgnored private var reloadTask: Task<Void, Never>?
    private let engine: EngineClient
    private let watch = DocumentsWatch()

    init(engine: EngineClient) {
        self.engine = engine
    }

    /// The screen is shown: watch for changes and load.
    func appear() {
        watch.start(engine: engine) { [weak self] ids in
            guard let self, ids.contains(where: DocumentKind.isCase) else { return }
            self.scheduleReload(after: .milliseconds(300))
        }
        scheduleReload(after: .zero)
    }

    /// The screen is gone: release the watch handle, which stops the notifications.
    func disappear() {
        watch.stop()
        reloadTask?.cancel()
    }

    /// The search text or scope changed: wait for the typing to pause.
    func filterChanged() {
        scheduleReload(after: .milliseconds(250))
    }

    func reload() async {
        let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            cases = try await engine.listCases(statuses: scope.statuses, text: text.isEmpty ? nil : text)
            errorMessage = nil
        } catch {
            errorMessage = ErrorText.message(error)
        }
        hasLoaded = true
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
