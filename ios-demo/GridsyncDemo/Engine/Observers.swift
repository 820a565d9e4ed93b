import Foundation

/// Receives sync progress from the engine. The engine calls `onProgress` on its own
/// worker thread after every request; `handler` must hop to the main actor itself.
final class SyncProgressRelay: SyncObserver {
    private let handler: @Sendable (SyncProgress) -> Void

    init(_ handler: @escaping @Sendable (SyncProgress) -> Void) {
        self.handler = handler
    }

    func onProgress(progress: SyncProgress) {
        handler(progress)
    }
}

/// Receives "documents changed" notifications from `GridEngine.watch`. They arrive
/// on the thread that committed the write (the caller of a local edit, or the sync
/// worker), so this relay only hands the ids to the main actor and returns at once.
final class DocumentsChangedRelay: DocumentsObserver {
    private let handler: @MainActor @Sendable ([String]) -> Void

    init(_ handler: @escaping @MainActor @Sendable ([String]) -> Void) {
        self.handler = handler
    }

    func onDocumentsChanged(docIds: [String]) {
        let handler = self.handler
        Task { @MainActor in
            handler(docIds)
        }
    }
}

/// Keeps a `watch` registration alive while a screen is shown. Releasing the handle
/// (or `stop`) ends the notifications; the engine holds no reference back to the app.
@MainActor
final class DocumentsWatch {
    private var handle: WatchHandle?

    /// Start watching (again). `onChange` runs on the main actor with the changed ids.
    func start(engine: EngineClient, onChange: @escaping @MainActor @Sendable ([String]) -> Void) {
        stop()
        handle = try? engine.watch(DocumentsChangedRelay(onChange))
    }

    func stop() {
        handle?.cancel()
        handle = nil
    }
}

/// Document ids name their kind: `case-<uuid>` or `patrol-<uuid>`.
enum DocumentKind {
    static func isCase(_ id: String) -> Bool { id.hasPrefix("case-") }
}
