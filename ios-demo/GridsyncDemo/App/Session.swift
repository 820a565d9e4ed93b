import Foundation

/// Everything that exists while this phone is enrolled and its database is open: the
/// engine, the facts from the directory, and the models that outlive one screen
/// (sync, and the patrol that keeps recording while other tabs are shown).
@MainActor
final class Session {
    let device: DeviceRecord
    let facts: DirectoryFacts
    let engine: EngineClient
    let sync: SyncModel
    let patrol: PatrolViewModel
    let location: LocationService

    init(device: DeviceRecord, facts: DirectoryFacts, engine: EngineClient,
         location: LocationService, store: DeviceStore) {
        self.device = device
        self.facts = facts
        self.engine = engine
        self.location = location
        self.sync = SyncModel(engine: engine)
        self.patrol = PatrolViewModel(
            engine: engine, location: location, store: store, deviceId: device.deviceId)
        patrol.onEnded = { [weak self] in
            self?.syncSoon()
        }
    }

    /// Start a sync in the background of the UI (no-op if one is running).
    func syncSoon() {
        let sync = self.sync
        Task {
            await sync.syncNow()
        }
    }

    /// Stop GPS and close the database (before erasing it, or to enroll again).
    func close() async {
        patrol.suspendTracking()
        await engine.close()
    }
}
