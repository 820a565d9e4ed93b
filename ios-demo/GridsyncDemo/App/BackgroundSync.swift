import BackgroundTasks
import Foundation
import os

/// Background sync on iOS: a `BGAppRefreshTask` with the identifier below (listed in
/// Info.plist under `BGTaskSchedulerPermittedIdentifiers`, with `UIBackgroundModes:
/// fetch`). The handler is registered at launch (`AppDelegate`); a request is
/// submitted when a device is opened and each time the app goes to the background,
/// asking for no earlier than 15 minutes later. iOS decides when it really runs (from
/// how the phone is used, battery and network) and gives it about 30 seconds; a run
/// first submits the next request, then syncs through `AppModel.syncInBackground`,
/// which erases the device on `Wiped` as the sync screen does. Cancelled on erase.
enum BackgroundSync {
    static let identifier = "org.gridsync.demo.sync"
    private static let interval: TimeInterval = 15 * 60
    private static let log = Logger(subsystem: "org.gridsync.demo", category: "background")

    /// Register the handler. Must run before the app finishes launching.
    @MainActor
    static func register(app: AppModel) {
        let registered = BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            run(TaskBox(task), app: app)
        }
        if !registered {
            log.error("background refresh not registered (identifier missing from Info.plist?)")
        }
    }

    /// Ask for the next refresh (replaces a request already pending).
    static func schedule() {
        let request = BGAppRefreshTaskRequest(identifier: identifier)
        request.earliestBeginDate = Date(timeIntervalSinceNow: interval)
        do {
            try BGTaskScheduler.shared.submit(request)
        } catch {
            // The simulator has no background refresh; Background App Refresh may be
            // switched off in Settings. Syncs then run while the app is open.
            log.error("background refresh not scheduled")
        }
    }

    /// No more refreshes: the device was erased or is not enrolled.
    static func cancel() {
        BGTaskScheduler.shared.cancel(taskRequestWithIdentifier: identifier)
    }

    private static func run(_ box: TaskBox, app: AppModel) {
        schedule()
        let work = Task { @MainActor in
            await app.syncInBackground()
        }
        // Out of time: cancel the sync (the engine keeps what it committed) and say so.
        box.task.expirationHandler = {
            work.cancel()
        }
        Task {
            let done = await work.value
            box.task.setTaskCompleted(success: done && !work.isCancelled)
        }
    }
}

/// Carries the system's task object into the tasks that finish it.
private final class TaskBox: @unchecked Sendable {
    let task: BGTask
    init(_ task: BGTask) {
        self.task = task
    }
}
