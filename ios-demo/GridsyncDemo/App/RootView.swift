import SwiftUI

/// Chooses the screen for the app's phase and forwards scene changes to the model.
struct RootView: View {
    @Environment(AppModel.self) private var app
    @Environment(\.scenePhase) private var scenePhase

    var body: some View {
        content
            .task {
                await app.start()
            }
            .onChange(of: scenePhase) { _, newPhase in
                app.scenePhaseChanged(newPhase)
            }
    }

    @ViewBuilder
    private var content: some View {
        switch app.phase {
        case .starting:
            ProgressView("app.opening")
        case .enrolling(let notice):
            EnrollView(notice: notice)
        case .ready(let session):
            MainTabView(session: session)
        case .failed(let message, _):
            OpenFailedView(message: message)
        }
    }
}

/// The five tabs of an enrolled phone.
struct MainTabView: View {
    let session: Session

    var body: some View {
        TabView {
            PatrolView(session: session)
                .tabItem { Label("tab.patrol", systemImage: "figure.walk") }
            ReportView(session: session)
                .tabItem { Label("tab.report", systemImage: "camera") }
            CaseListView(session: session)
                .tabItem { Label("tab.cases", systemImage: "list.bullet.rectangle") }
            PointsView(session: session)
                .tabItem { Label("tab.points", systemImage: "star") }
            SyncStatusView(session: session)
                .tabItem { Label("tab.sync", systemImage: "arrow.triangle.2.circlepath") }
        }
    }
}

/// The database did not open. Offer a retry, or a fresh enrollment that leaves the
/// old database where it is.
struct OpenFailedView: View {
    @Environment(AppModel.self) private var app
    let message: String
    @State private var confirmEnrollAgain = false

    var body: some View {
        NavigationStack {
            List {
                Section {
                    Text("open.failed.body")
                    Text(verbatim: message)
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                }
                Section {
                    Button("common.retry") {
                        Task { await app.retryOpen() }
                    }
                    Button("open.failed.enrollAgain", role: .destructive) {
                        confirmEnrollAgain = true
                    }
                }
            }
            .navigationTitle("open.failed.title")
            .confirmationDialog("open.failed.enrollAgain", isPresented: $confirmEnrollAgain,
                                titleVisibility: .visible) {
                Button("open.failed.enrollAgain", role: .destructive) {
                    Task { await app.enrollAgain() }
                }
            } message: {
                Text("enrollAgain.keepsData")
            }
        }
    }
}
