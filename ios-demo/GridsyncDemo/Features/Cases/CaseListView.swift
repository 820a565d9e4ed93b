import SwiftUI

/// 事件列表: this device's cases, newest first, searchable, filtered by open/closed.
/// Pull to refresh runs a sync; the list follows by itself through `watch`.
struct CaseListView: View {
    let session: Session
    @State private var model: CaseListViewModel

    init(session: Session) {
        self.session = session
        _model = State(initialValue: CaseListViewModel(engine: session.engine))
    }

    var body: some View {
        NavigationStack {
            List {
                Picker("cases.scope", selection: $model.scope) {
                    ForEach(CaseListViewModel.Scope.allCases) { scope in
                        Text(LocalizedStringKey("cases.scope.\(scope.rawValue)")).tag(scope)
                    }
                }
                .pickerStyle(.segmented)
                .listRowSeparator(.hidden)

                if let message = model.errorMessage {
                    Text(verbatim: message).foregroundStyle(.red)
                }
                ForEach(model.cases, id: \.id) { summary in
                    NavigationLink(value: summary.id) {
                        CaseRow(summary: summary)
                    }
                }
            }
            .listStyle(.plain)
            .overlay {
                if model.hasLoaded && model.cases.isEmpty && model.errorMessage == nil {
                    if model.query.isEmpty {
                        ContentUnavailableView(
                            "cases.empty", systemImage: "tray",
                            description: Text("cases.empty.description"))
                    } else {
                        ContentUnavailableView.search(text: model.query)
                    }
                }
            }
            .searchable(text: $model.query, prompt: Text("cases.search.prompt"))
            .onChange(of: model.query) {
                model.filterChanged()
            }
            .onChange(of: model.scope) {
                model.filterChanged()
            }
            .refreshable {
                await session.sync.syncNow()
            }
            .navigationTitle("cases.title")
            .navigationDestination(for: String.self) { caseId in
                CaseDetailView(session: session, caseId: caseId)
            }
            .connectionBanner(session: session)
            .onAppear { model.appear() }
            .onDisappear { model.disappear() }
        }
    }
}

/// One row: title, status, photos, and a mark when the timeline holds a conflict.
private struct CaseRow: View {
    let summary: CaseSummaryRecord

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            Text(verbatim: summary.title)
                .font(.body)
                .lineLimit(2)
            HStack(spacing: 8) {
                StatusBadge(code: summary.status, zh: summary.statusZh)
                if summary.photoCount > 0 {
                    Label(String(summary.photoCount), systemImage: "photo")
                        .font(.caption)
                        .foregroundStyle(.secondary)
                }
                if summary.hasConflict {
                    Label("cases.conflict", systemImage: "exclamationmark.triangle.fill")
                        .font(.caption)
                        .foregroundStyle(.orange)
                }
            }
        }
        .padding(.vertical, 2)
    }
}

/// A case status as a coloured capsule.
struct StatusBadge: View {
    let code: String
    let zh: String

    var body: some View {
        Text(verbatim: L.status(code, zh: zh))
            .font(.caption.weight(.semibold))
            .padding(.horizontal, 8)
            .padding(.vertical, 2)
            .background(color.opacity(0.15), in: Capsule())
            .foregroundStyle(color)
    }

    private var color: Color {
        switch code {
        case "reported": return .red
        case "accepted", "dispatched": return .orange
        case "handled", "verified": return .blue
        case "archived", "evaluated": return .green
        default: return .gray
        }
    }
}
