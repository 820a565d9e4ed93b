import SwiftUI
import UIKit

/// 巡查: start and end a patrol; while it runs, the elapsed time against the two-hour
/// target and how many GPS points are recorded.
struct PatrolView: View {
    let session: Session
    private var model: PatrolViewModel { session.patrol }

    var body: some View {
        NavigationStack {
            List {
                if let patrol = model.active {
                    Section {
                        RunningPatrolCard(patrol: patrol, model: model)
                    }
                    Section {
                        Button(role: .destructive) {
                            Task { await model.end() }
                        } label: {
                            Label("patrol.end", systemImage: "stop.circle.fill")
                        }
                        .disabled(model.isBusy)
                    } footer: {
                        Text("patrol.background.footer")
                    }
                } else {
                    Section {
                        Button {
                            Task { await model.start() }
                        } label: {
                            Label("patrol.start", systemImage: "figure.walk.circle.fill")
                                .font(.headline)
                        }
                        .disabled(model.isBusy)
                    } footer: {
                        Text("patrol.start.footer")
                    }
                    if let ended = model.lastEnded {
                        Section("patrol.lastEnded") {
                            LabeledContent("patrol.duration") {
                                Text(Duration.seconds(ended.duration)
                                    .formatted(.time(pattern: .hourMinuteSecond)))
                            }
                            LabeledContent("patrol.points") {
                                Text(verbatim: String(ended.points))
                            }
                        }
                    }
                }
                if model.locationDenied {
                    Section {
                        Text("patrol.location.denied")
                        Button("common.openSettings") {
                            if let url = URL(string: UIApplication.openSettingsURLString) {
                                UIApplication.shared.open(url)
                            }
                        }
                    }
                }
                if let message = model.errorMessage {
                    Section {
                        Text(verbatim: message).foregroundStyle(.red)
                    }
                }
            }
            .navigationTitle("patrol.title")
            .connectionBanner(session: session)
        }
    }
}

/// The running patrol: a clock that ticks every second, progress to two hours, points.
private struct RunningPatrolCard: View {
    let patrol: ActivePatrol
    let model: PatrolViewModel

    var body: some View {
        TimelineView(.periodic(from: .now, by: 1)) { context in
            let elapsed = max(0, context.date.timeIntervalSince(patrol.startedAt))
            VStack(alignment: .leading, spacing: 8) {
                Label("patrol.running", systemImage: "location.fill")
                    .font(.headline)
                    .foregroundStyle(.green)
                Text(Duration.seconds(elapsed).formatted(.time(pattern: .hourMinuteSecond)))
                    .font(.system(.largeTitle, design: .rounded).monospacedDigit())
                ProgressView(value: min(elapsed, PatrolViewModel.targetDuration),
                             total: PatrolViewModel.targetDuration) {
                    Text("patrol.target")
                }
                Text(verbatim: L.f("patrol.pointsRecorded",
                                   String(model.recordedPoints), String(model.pendingPoints)))
                    .font(.subheadline)
                if let accuracy = model.lastAccuracy {
                    Text(verbatim: L.f("patrol.accuracy", String(Int(accuracy.rounded()))))
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                } else {
                    Text("patrol.waitingForFix")
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                }
            }
            .padding(.vertical, 4)
        }
    }
}
