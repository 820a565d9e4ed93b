import SwiftUI

/// 同步: connection, a sync button with live progress, what the last sync did, and
/// this device's identity. When the relay no longer accepts the device, the way to
/// enroll again; and 退出并清除, which erases this phone's data and key.
struct SyncStatusView: View {
    @Environment(AppModel.self) private var app
    let session: Session
    @State private var confirmEnrollAgain = false
    @State private var confirmSignOut = false
    /// Changes not yet acknowledged by the server, read when 退出并清除 is tapped.
    @State private var unsynced: UInt64 = 0

    private var sync: SyncModel { session.sync }

    var body: some View {
        NavigationStack {
            List {
                connectionSection
                syncSection
                if let summary = sync.lastSummary {
                    lastSyncSection(summary)
                }
                if sync.accessProblem == .mustEnrollAgain {
                    Section {
                        Text("sync.enrollAgain.body")
                        Button("sync.enrollAgain", role: .destructive) {
                            confirmEnrollAgain = true
                        }
                    }
                }
                deviceSection
                signOutSection
            }
            .navigationTitle("sync.title")
            .connectionBanner(session: session)
            .confirmationDialog("sync.enrollAgain", isPresented: $confirmEnrollAgain,
                                titleVisibility: .visible) {
                Button("sync.enrollAgain", role: .destructive) {
                    Task { await app.enrollAgain() }
                }
            } message: {
                Text("enrollAgain.keepsData")
            }
            .confirmationDialog("sync.signOut.title", isPresented: $confirmSignOut,
                                titleVisibility: .visible) {
                Button("sync.signOut", role: .destructive) {
                    Task { await app.signOutAndErase() }
                }
            } message: {
                if unsynced > 0 {
                    Text(verbatim: L.s("sync.signOut.body") + "\n" + L.f("sync.signOut.unsynced", String(unsynced)))
                } else {
                    Text("sync.signOut.body")
                }
            }
        }
    }

    private var signOutSection: some View {
        Section {
            Button("sync.signOut", role: .destructive) {
                Task {
                    unsynced = (try? await session.engine.pendingChanges()) ?? 0
                    confirmSignOut = true
                }
            }
        } footer: {
            Text("sync.signOut.footer")
        }
    }

    private var connectionSection: some View {
        Section("sync.section.connection") {
            LabeledContent("sync.network") {
                if app.connectivity.isOnline && app.connectivity.isExpensive {
                    Text("sync.network.cellular")
                } else if app.connectivity.isOnline {
                    Text("sync.network.online")
                } else {
                    Text("sync.network.offline").foregroundStyle(.orange)
                }
            }
            LabeledContent("sync.server") {
                Text(verbatim: session.device.serverURL)
                    .lineLimit(1)
                    .truncationMode(.middle)
            }
            if session.device.plainHttp {
                Label("sync.server.plainHttp", systemImage: "exclamationmark.triangle")
                    .font(.footnote)
                    .foregroundStyle(.red)
            }
            LabeledContent("sync.server.status") {
                if sync.serverUnreachable {
                    Text("sync.server.unreachable").foregroundStyle(.orange)
                } else if sync.lastSuccessAt != nil {
                    Text("sync.server.reachable")
                } else {
                    Text("sync.server.unknown").foregroundStyle(.secondary)
                }
            }
        }
    }

    private var syncSection: some View {
        Section {
            Button {
                Task { await sync.syncNow() }
            } label: {
                Label("sync.now", systemImage: "arrow.triangle.2.circlepath")
            }
            .disabled(sync.isSyncing || sync.accessProblem != nil)

            if sync.isSyncing {
                progressView
            }
            if let at = sync.lastSuccessAt {
                LabeledContent("sync.lastSuccess") {
                    Text(at, style: .relative)
                }
            }
            if let failure = sync.lastFailure {
                Text(verbatim: failure)
                    .font(.footnote)
                    .foregroundStyle(.red)
            }
        } header: {
            Text("sync.section.sync")
        } footer: {
            Text("sync.footer")
        }
    }

    @ViewBuilder
    private var progressView: some View {
        if let progress = sync.progress {
            VStack(alignment: .leading, spacing: 4) {
                Text(verbatim: L.syncPhase(progress.phase))
                    .font(.subheadline.weight(.medium))
                if progress.remaining > 0 {
                    ProgressView(
                        value: Double(progress.items),
                        total: Double(progress.items + progress.remaining))
                } else {
                    ProgressView()
                        .frame(maxWidth: .infinity, alignment: .leading)
                }
                Text(verbatim: L.f("sync.progress.detail",
                                   String(progress.items), L.bytes(progress.bytes),
                                   String(progress.remaining)))
                    .font(.caption)
                    .foregroundStyle(.secondary)
            }
        } else {
            HStack {
                ProgressView()
                Text("sync.connecting")
            }
        }
    }

    private func lastSyncSection(_ summary: SyncSummary) -> some View {
        Section("sync.section.last") {
            LabeledContent("sync.pushed") { Text(verbatim: String(summary.pushed)) }
            LabeledContent("sync.pulled") { Text(verbatim: String(summary.pulled)) }
            LabeledContent("sync.photosUploaded") { Text(verbatim: String(summary.photosUploaded)) }
            if summary.rejected > 0 {
                LabeledContent("sync.rejected") {
                    Text(verbatim: String(summary.rejected)).foregroundStyle(.red)
                }
            }
            if summary.purged > 0 {
                LabeledContent("sync.purged") { Text(verbatim: String(summary.purged)) }
            }
        }
    }

    private var deviceSection: some View {
        Section("sync.section.device") {
            LabeledContent("sync.user") { Text(verbatim: session.device.userId) }
            if let role = session.facts.role {
                LabeledContent("sync.role") { Text(verbatim: L.role(role)) }
            }
            if let region = session.facts.regionName {
                LabeledContent("sync.region") { Text(verbatim: region) }
            }
            LabeledContent("sync.deviceId") {
                Text(verbatim: session.device.deviceId)
                    .font(.caption.monospaced())
                    .lineLimit(1)
                    .truncationMode(.middle)
            }
            LabeledContent("sync.enrolledAt") {
                Text(session.device.enrolledAt, format: .dateTime.year().month().day().hour().minute())
            }
        }
    }
}
