import SwiftUI

/// 我的积分: the month's points, the counts behind them and the leaders' adjustments.
/// Pull to refresh runs a sync; the screen follows changes by itself through `watch`.
struct PointsView: View {
    let session: Session
    @State private var model: PointsViewModel

    init(session: Session) {
        self.session = session
        _model = State(initialValue: PointsViewModel(engine: session.engine, userId: session.device.userId))
    }

    var body: some View {
        NavigationStack {
            List {
                HStack {
                    Button("points.previousMonth", systemImage: "chevron.left") { model.previousMonth() }
                        .labelStyle(.iconOnly)
                    Spacer()
                    Text(verbatim: L.f("points.month", String(model.year), String(model.month)))
                        .font(.headline)
                    Spacer()
                    Button("points.nextMonth", systemImage: "chevron.right") { model.nextMonth() }
                        .labelStyle(.iconOnly)
                }
                .buttonStyle(.borderless)

                if let message = model.errorMessage {
                    Text(verbatim: message).foregroundStyle(.red)
                }
                if let totals = model.totals {
                    totalsSection(totals)
                    adjustmentsSection
                }
            }
            .overlay {
                if model.isEmpty {
                    ContentUnavailableView(
                        "points.empty", systemImage: "star",
                        description: Text("points.empty.description"))
                }
            }
            .refreshable {
                await session.sync.syncNow()
            }
            .navigationTitle("points.title")
            .connectionBanner(session: session)
        }
        .onAppear { model.appear() }
        .onDisappear { model.disappear() }
        .onChange(of: session.sync.lastSuccessAt) { model.synced() }
    }

    private func totalsSection(_ totals: WorkerPointsRecord) -> some View {
        Section {
            LabeledContent("points.total") { Text(verbatim: String(totals.points)).font(.title2.bold()) }
            LabeledContent("points.computed") { Text(verbatim: String(totals.computed)) }
            LabeledContent("points.adjusted") { Text(verbatim: signed(totals.adjusted)) }
            LabeledContent("points.validReports") { Text(verbatim: String(totals.validReports)) }
            LabeledContent("points.handledOnTheSpot") { Text(verbatim: String(totals.handledOnTheSpot)) }
            LabeledContent("points.majorCases") { Text(verbatim: String(totals.majorCases)) }
            LabeledContent("points.invalidReports") { Text(verbatim: String(totals.invalidReports)) }
            LabeledContent("points.visits") { Text(verbatim: String(totals.visits)) }
            LabeledContent("points.inspections") { Text(verbatim: String(totals.inspections)) }
        }
    }

    private var adjustmentsSection: some View {
        Section("points.adjustments") {
            if model.adjustments.isEmpty {
                Text("points.adjustments.none").foregroundStyle(.secondary)
            }
            ForEach(model.adjustments) { adjustment in
                VStack(alignment: .leading, spacing: 4) {
                    Text(verbatim: L.f("points.adjustment", signed(Int64(adjustment.points))))
                        .font(.headline)
                    Text(verbatim: adjustment.reason)
                    Text(verbatim: "\(adjustment.byName) · \(L.dateTime(ms: adjustment.atMs))")
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                }
            }
        }
    }

    private func signed(_ value: Int64) -> String {
        value > 0 ? "+\(value)" : String(value)
    }
}
