import CoreLocation
import Foundation

/// One GPS fix, copied out of `CLLocation` so it can cross threads. Coordinates are
/// WGS-84 as CoreLocation gives them (not the GCJ-02 of Chinese map tiles). Fixes
/// stay on the device and in the engine; they are never logged.
struct LocationFix: Sendable {
    var latitude: Double
    var longitude: Double
    var accuracy: Double
    var timestamp: Date

    init(_ location: CLLocation) {
        latitude = location.coordinate.latitude
        longitude = location.coordinate.longitude
        accuracy = location.horizontalAccuracy
        timestamp = location.timestamp
    }

    /// Good enough to draw a patrol track or place a case (within 100 m).
    var isUsable: Bool { accuracy >= 0 && accuracy <= 100 }

    var trackPoint: TrackPointRecord {
        TrackPointRecord(
            atMs: Int64((timestamp.timeIntervalSince1970 * 1000).rounded()),
            lat: latitude, lon: longitude)
    }
}

/// CoreLocation for the whole app: continuous updates during a patrol (kept running
/// in the background with the blue indicator; needs `UIBackgroundModes: location`
/// and "when in use" permission), and one-off fixes for a case report.
///
/// The manager is created on the main thread, so its delegate callbacks arrive there;
/// they are `nonisolated` as CoreLocation's protocol requires and hop to the main
/// actor with plain values.
@MainActor
final class LocationService: NSObject, CLLocationManagerDelegate {
    private let manager = CLLocationManager()
    private var continuous: (@MainActor ([LocationFix]) -> Void)?
    private var waiters: [CheckedContinuation<LocationFix?, Never>] = []

    /// Called when the user grants or withdraws permission.
    var onAuthorizationChange: (@MainActor (CLAuthorizationStatus) -> Void)?

    override init() {
        super.init()
        manager.delegate = self
        manager.desiredAccuracy = kCLLocationAccuracyNearestTenMeters
        manager.distanceFilter = 10
        manager.activityType = .fitness
        manager.pausesLocationUpdatesAutomatically = false
    }

    var authorization: CLAuthorizationStatus { manager.authorizationStatus }

    var isAuthorized: Bool {
        authorization == .authorizedWhenInUse || authorization == .authorizedAlways
    }

    /// Ask for "when in use" permission if the user has not been asked yet.
    func requestPermission() {
        if manager.authorizationStatus == .notDetermined {
            manager.requestWhenInUseAuthorization()
        }
    }

    /// Deliver fixes to `handler` until `stopContinuous`, also in the background.
    func startContinuous(_ handler: @escaping @MainActor ([LocationFix]) -> Void) {
        continuous = handler
        manager.allowsBackgroundLocationUpdates = true
        manager.showsBackgroundLocationIndicator = true
        manager.startUpdatingLocation()
    }

    func stopContinuous() {
        continuous = nil
        manager.stopUpdatingLocation()
        manager.allowsBackgroundLocationUpdates = false
    }

    /// A recent usable fix, or a new one; nil without permission or on failure.
    func currentFix() async -> LocationFix? {
        if let location = manager.location, -location.timestamp.timeIntervalSinceNow < 30 {
            let fix = LocationFix(location)
            if fix.isUsable { return fix }
        }
        guard isAuthorized else { return nil }
        return await withCheckedContinuation { (continuation: CheckedContinuation<LocationFix?, Never>) in
            waiters.append(continuation)
            manager.requestLocation()
        }
    }

    // MARK: CLLocationManagerDelegate

    nonisolated func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation]) {
        let fixes = locations.map(LocationFix.init)
        Task { @MainActor in
            self.deliver(fixes)
        }
    }

    nonisolated func locationManager(_ manager: CLLocationManager, didFailWithError error: Error) {
        // kCLErrorLocationUnknown is transient during continuous updates; a one-off
        // request gets nil and the report is saved without coordinates.
        Task { @MainActor in
            self.resumeWaiters(with: nil)
        }
    }

    nonisolated func locationManagerDidChangeAuthorization(_ manager: CLLocationManager) {
        let status = manager.authorizationStatus
        Task { @MainActor in
            self.onAuthorizationChange?(status)
            if status == .denied || status == .restricted {
                self.resumeWaiters(with: nil)
            }
        }
    }

    private func deliver(_ fixes: [LocationFix]) {
        let usable = fixes.filter(\.isUsable)
        if let last = usable.last {
            resumeWaiters(with: last)
        }
        if !usable.isEmpty {
            continuous?(usable)
        }
    }

    private func resumeWaiters(with fix: LocationFix?) {
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting {
            waiter.resume(returning: fix)
        }
    }
}
