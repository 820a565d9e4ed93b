import Foundation
import Observation
import UIKit

/// One case with its timeline (`getCase`), its photos, notes, and the actions a grid
/// worker may take on it. Reloaded when `watch` names this case: a dispatcher's
/// decision pulled by a sync shows up while the screen is open.
@MainActor
@Observable
final class CaseDetailViewModel {
    /// A grid worker's actions, by the case's status (see docs/ARCHITECTURE.md, the
    /// workflow fold). The engine checks them again and may refuse.
    enum WorkerAction: String, Identifiable {
        case selfHandle
        case escalate
        case verifyPassed
        case verifyFailed

        var id: String { rawValue }

        static func available(status: String) -> [WorkerAction] {
            switch status {
            case "reported", "accepted": return [.selfHandle, .escalate]
            case "handled": return [.verifyPassed, .verifyFailed]
            default: return []
            }
        }

        func caseAction(text: String) -> CaseAction {
            switch self {
            case .selfHandle: return .selfHandle(result: text)
            case .escalate: return .escalate(reason: text)
            case .verifyPassed: return .verify(passed: true, comment: text)
            case .verifyFailed: return .verify(passed: false, comment: text)
            }
        }
    }

    let caseId: String
    private(set) var record: CaseRecord?
    private(set) var photos: [String: PhotoState] = [:]
    private(set) var isWorking = false
    var errorMessage: String?
    var noteDraft = ""

    enum PhotoState {
        case loading
        case loaded(UIImage)
        /// Not on this phone yet (photos of others' cases are fetched on demand).
        case missing
    }

    private let engine: EngineClient
    private let watch = DocumentsWatch()

    init(engine: EngineClient, caseId: String) {
        self.engine = engine
        self.caseId = caseId
    }

    func appear() {
        let caseId = self.caseId
        watch.start(engine: engine) { [weak self] ids in
            guard let self, ids.contains(caseId) else { return }
            Task { await self.reload() }
        }
        Task { await reload() }
    }

    func disappear() {
        watch.stop()
    }

    func reload() async {
        do {
            let record = try await engine.getCase(id: caseId)
            self.record = record
            errorMessage = nil
            for hash in record.photos where needsLoad(hash) {
                loadPhoto(hash)
            }
        } catch {
            errorMessage = ErrorText.message(error)
        }
    }

    func perform(_ action: WorkerAction, text: String) async {
        await run { engine, caseId in
            _ = try await engine.act(caseId: caseId, action: action.caseAction(text: text))
        }
    }

    func addNote() async {
        let text = noteDraft.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return }
        await run { engine, caseId in
            try await engine.addNote(caseId: caseId, text: text)
        }
        if errorMessage == nil {
            noteDraft = ""
        }
    }

    private func run(_ body: (EngineClient, String) async throws -> Void) async {
        guard !isWorking else { return }
        isWorking = true
        errorMessage = nil
        defer { isWorking = false }
        do {
            try await body(engine, caseId)
            await reload()
        } catch {
            errorMessage = ErrorText.message(error)
        }
    }

    /// Load photos not tried yet, and try missing ones again (a sync may have
    /// brought them since).
    private func needsLoad(_ hash: String) -> Bool {
        switch photos[hash] {
        case .none, .some(.missing): return true
        case .some(.loading), .some(.loaded): return false
        }
    }

    private func loadPhoto(_ hash: String) {
        photos[hash] = .loading
        Task {
            do {
                let data = try await self.engine.photoBytes(hash: hash)
                if let image = UIImage(data: data) {
                    self.photos[hash] = .loaded(image)
                } else {
                    self.photos[hash] = .missing
                }
            } catch {
                self.photos[hash] = .missing
            }
        }
    }
}
