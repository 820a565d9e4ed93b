import SwiftUI
import UIKit

@main
struct GridsyncDemoApp: App {
    @UIApplicationDelegateAdaptor(AppDelegate.self) private var delegate

    var body: some Scene {
        WindowGroup {
            RootView()
                .environment(delegate.app)
        }
    }
}

/// Owns the app's model, so a launch for a background refresh — which may have no
/// scene — reaches the same one the screens use, and registers the refresh handler
/// while the app is launching, as `BGTaskScheduler` requires.
@MainActor
final class AppDelegate: NSObject, UIApplicationDelegate {
    let app = AppModel()

    func application(
        _ application: UIApplication,
        didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]? = nil
    ) -> Bool {
        BackgroundSync.register(app: app)
        return true
    }
}
