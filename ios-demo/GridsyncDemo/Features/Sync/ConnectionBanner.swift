import SwiftUI

/// The offline indicator shown under the navigation bar of every tab: no network
/// path (NWPathMonitor), or a path but no relay (the last sync failed with
/// `GridsyncError.Network`). Work done offline is safe on the phone either way.
struct ConnectionBanner: View {
    @Environment(AppModel.self) private var app
    let session: Session

    var body: some View {
        if !app.connectivity.isOnline {
            banner("banner.offline", systemImage: "wifi.slash", color: .orange)
        } else if session.sync.accessProblem != nil {
            banner("banner.enrollAgain", systemImage: "person.crop.circle.badge.exclamationmark", color: .red)
        } else if session.sync.serverUnreachable {
            banner("banner.serverUnreachable", systemImage: "icloud.slash", color: .orange)
        } else if session.sync.isSyncing {
            banner("banner.syncing", systemImage: "arrow.triangle.2.circlepath", color: .blue)
        }
    }

    private func banner(_ key: LocalizedStringKey, systemImage: String, color: Color) -> some View {
        Label(key, systemImage: systemImage)
            .font(.footnote.weight(.medium))
            .foregroundStyle(.white)
            .frame(maxWidth: .infinity)
            .padding(.vertical, 6)
            .background(color)
    }
}

extension View {
    /// Put the offline indicator under the navigation bar.
    func connectionBanner(session: Session) -> some View {
        safeAreaInset(edge: .top, spacing: 0) {
            ConnectionBanner(session: session)
        }
    }
}
