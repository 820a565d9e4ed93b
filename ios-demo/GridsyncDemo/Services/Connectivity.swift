import Foundation
import Network
import Observation

/// Whether the phone has a network path at all (NWPathMonitor). A path says nothing
/// about the relay being reachable; `SyncModel.serverUnreachable` covers that, from
/// the `GridsyncError.Network` a failed sync returns. The offline indicator uses both.
@MainActor
@Observable
final class Connectivity {
    private(set) var isOnline = true
    private(set) var isExpensive = false

    /// Called when the path comes back (offline → online).
    @ObservationIgnored var onBecameOnline: (() -> Void)?

    @ObservationIgnored private var monitor: NWPathMonitor?

    func start() {
        guard monitor == nil else { return }
        let monitor = NWPathMonitor()
        // Runs on the monitor's queue, not the main actor.
        monitor.pathUpdateHandler = { @Sendable [weak self] path in
            guard let self else { return }
            let online = path.status == .satisfied
            let expensive = path.isExpensive
            Task { @MainActor in
                self.update(online: online, expensive: expensive)
            }
        }
        monitor.start(queue: DispatchQueue(label: "org.gridsync.demo.path", qos: .utility))
        self.monitor = monitor
    }

    private func update(online: Bool, expensive: Bool) {
        let cameBack = online && !isOnline
        isOnline = online
        isExpensive = expensive
        if cameBack {
            onBecameOnline?()
        }
    }
}
