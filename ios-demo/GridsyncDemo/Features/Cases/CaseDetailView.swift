import SwiftUI
import UIKit

/// 事件详情: the case, its photos and notes, the worker's actions, and the timeline of
/// the six-step loop as the engine folds it (conflicts and refused entries shown).
struct CaseDetailView: View {
    let session: Session
    @State private var model: CaseDetailViewModel
    @State private var pendingAction: CaseDetailViewModel.WorkerAction?
    @State private var actionText = ""
    @State private var fullScreenPhoto: IdentifiedImage?

    init(session: Session, caseId: String) {
        self.session = session
        _model = State(initialValue: CaseDetailViewModel(engine: session.engine, caseId: caseId))
    }

    var body: some View {
        List {
            if let record = model.record {
                summarySection(record)
                if !record.photos.isEmpty {
                    photosSection(record)
                }
                notesSection(record)
                if session.facts.isGridWorker {
                    actionsSection(record)
                }
                timelineSection(record)
            } else if model.errorMessage == nil {
                ProgressView()
            }
            if let message = model.errorMessage {
                Section {
                    Text(verbatim: message).foregroundStyle(.red)
                }
            }
        }
        .navigationTitle("detail.title")
        .navigationBarTitleDisplayMode(.inline)
        .onAppear { model.appear() }
        .onDisappear { model.disappear() }
        .alert(actionTitle, isPresented: actionAlertShown) {
            TextField("detail.action.text", text: $actionText)
            Button("common.confirm") {
                if let action = pendingAction {
                    let text = actionText
                    Task { await model.perform(action, text: text) }
                }
                pendingAction = nil
            }
            Button("common.cancel", role: .cancel) {
                pendingAction = nil
            }
        }
        .sheet(item: $fullScreenPhoto) { photo in
            PhotoFullScreen(image: photo.image)
        }
    }

    // MARK: Sections

    private func summarySection(_ record: CaseRecord) -> some View {
        Section {
            VStack(alignment: .leading, spacing: 6) {
                Text(verbatim: record.title)
                    .font(.title3.weight(.semibold))
                StatusBadge(code: record.status, zh: record.statusZh)
            }
            if !record.description.isEmpty {
                Text(verbatim: record.description)
            }
            LabeledContent("detail.grid") {
                Text(verbatim: record.grid)
            }
        }
    }

    private func photosSection(_ record: CaseRecord) -> some View {
        Section("detail.photos") {
            ScrollView(.horizontal, showsIndicators: false) {
                HStack(spacing: 8) {
                    ForEach(record.photos.map(\.hash), id: \.self) { hash in
                        photoCell(hash)
                    }
                }
            }
        }
    }

    @ViewBuilder
    private func photoCell(_ hash: String) -> some View {
        switch model.photos[hash] {
        case .some(.loaded(let image)):
            Button {
                fullScreenPhoto = IdentifiedImage(id: hash, image: image)
            } label: {
                Image(uiImage: image)
                    .resizable()
                    .scaledToFill()
                    .frame(width: 96, height: 96)
                    .clipShape(RoundedRectangle(cornerRadius: 8))
            }
            .buttonStyle(.plain)
        case .some(.missing):
            VStack(spacing: 4) {
                Image(systemName: "icloud.and.arrow.down")
                Text("detail.photo.missing").font(.caption2)
            }
            .foregroundStyle(.secondary)
            .frame(width: 96, height: 96)
            .background(Color.secondary.opacity(0.1), in: RoundedRectangle(cornerRadius: 8))
        case .some(.loading), .none:
            ProgressView()
                .frame(width: 96, height: 96)
        }
    }

    private func notesSection(_ record: CaseRecord) -> some View {
        Section("detail.notes") {
            ForEach(Array(record.notes.enumerated()), id: \.offset) { _, note in
                Text(verbatim: note.text)
            }
            HStack {
                TextField("detail.note.placeholder", text: $model.noteDraft, axis: .vertical)
                Button("detail.note.add") {
                    Task { await model.addNote() }
                }
                .disabled(model.isWorking
                          || model.noteDraft.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
            }
        }
    }

    @ViewBuilder
    private func actionsSection(_ record: CaseRecord) -> some View {
        let actions = CaseDetailViewModel.WorkerAction.available(status: record.status)
        if !actions.isEmpty {
            Section("detail.actions") {
                ForEach(actions) { action in
                    Button(LocalizedStringKey("detail.action.\(action.rawValue)")) {
                        actionText = ""
                        pendingAction = action
                    }
                    .disabled(model.isWorking)
                }
            }
        }
    }

    private func timelineSection(_ record: CaseRecord) -> some View {
        Section("detail.timeline") {
            ForEach(Array(record.timeline.enumerated()), id: \.offset) { _, entry in
                TimelineRow(entry: entry)
            }
        }
    }

    // MARK: Action alert

    private var actionTitle: LocalizedStringKey {
        guard let action = pendingAction else { return "detail.actions" }
        return LocalizedStringKey("detail.action.\(action.rawValue)")
    }

    private var actionAlertShown: Binding<Bool> {
        Binding(
            get: { pendingAction != nil },
            set: { shown in
                if !shown { pendingAction = nil }
            })
    }
}

/// One timeline entry: what, who (id and role), when, and whether it took effect.
private struct TimelineRow: View {
    let entry: TimelineEntryRecord

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            HStack {
                Text(verbatim: L.action(entry.action, zh: entry.labelZh))
                    .font(.body.weight(.medium))
                if entry.outcome != "applied" {
                    Text(verbatim: L.outcome(entry.outcome))
                        .font(.caption.weight(.semibold))
                        .foregroundStyle(.orange)
                }
            }
            Text(verbatim: "\(L.role(entry.role)) · \(entry.actor)")
                .font(.caption)
                .foregroundStyle(.secondary)
            Text(verbatim: L.dateTime(ms: entry.atMs))
                .font(.caption)
                .foregroundStyle(.secondary)
        }
        .padding(.vertical, 2)
    }
}

/// A photo shown alone; tap or swipe down to close.
private struct PhotoFullScreen: View {
    let image: UIImage
    @Environment(\.dismiss) private var dismiss

    var body: some View {
        Image(uiImage: image)
            .resizable()
            .scaledToFit()
            .frame(maxWidth: .infinity, maxHeight: .infinity)
            .background(Color.black)
            .onTapGesture { dismiss() }
    }
}

/// A loaded photo as a sheet item.
struct IdentifiedImage: Identifiable {
    let id: String
    let image: UIImage
}
