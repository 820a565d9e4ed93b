import SwiftUI
import UIKit

/// 事件上报: photos from the camera, title and description, category and severity,
/// location. Saving commits the case on the phone; it syncs when it can.
struct ReportView: View {
    let session: Session
    @State private var model: ReportViewModel
    @State private var showPicker = false

    init(session: Session) {
        self.session = session
        _model = State(initialValue: ReportViewModel(
            engine: session.engine, location: session.location,
            categories: session.facts.categories))
    }

    var body: some View {
        NavigationStack {
            Form {
                photosSection
                Section("report.section.what") {
                    TextField("report.title.placeholder", text: $model.title)
                    TextField("report.details.placeholder", text: $model.details, axis: .vertical)
                        .lineLimit(3...8)
                }
                Section("report.section.category") {
                    Picker("report.category", selection: $model.categoryCode) {
                        ForEach(model.categories) { category in
                            Text(verbatim: category.displayName).tag(category.code)
                        }
                    }
                    if !model.subcategories.isEmpty {
                        Picker("report.subcategory", selection: $model.subcategoryCode) {
                            Text("report.subcategory.none").tag(String?.none)
                            ForEach(model.subcategories) { sub in
                                Text(verbatim: sub.displayName).tag(Optional(sub.code))
                            }
                        }
                    }
                    Picker("report.severity", selection: $model.severity) {
                        ForEach(ReportViewModel.severities, id: \.self) { code in
                            Text(verbatim: L.severity(code)).tag(code)
                        }
                    }
                    .pickerStyle(.segmented)
                }
                Section {
                    Toggle("report.attachLocation", isOn: $model.attachLocation)
                    TextField("report.address.placeholder", text: $model.address)
                } header: {
                    Text("report.section.where")
                } footer: {
                    Text("report.where.footer")
                }
                if let message = model.errorMessage {
                    Section {
                        Text(verbatim: message).foregroundStyle(.red)
                    }
                }
                Section {
                    Button {
                        Task { await model.submit() }
                    } label: {
                        HStack {
                            Text("report.submit").font(.headline)
                            if model.isSaving {
                                Spacer()
                                ProgressView()
                            }
                        }
                    }
                    .disabled(!model.canSubmit)
                } footer: {
                    Text("report.submit.footer")
                }
            }
            .navigationTitle("report.title")
            .connectionBanner(session: session)
            .onChange(of: model.categoryCode) {
                model.categoryChanged()
            }
            .task {
                await model.reloadCategories()
            }
            .onChange(of: session.sync.lastSuccessAt) {
                // A category renamed or added on the server reaches the form.
                if session.sync.lastSummary?.directoryUpdated == true {
                    Task { await model.reloadCategories() }
                }
            }
            .onAppear {
                model.onReported = { [session] in session.syncSoon() }
                model.prepareLocation()
            }
            .fullScreenCover(isPresented: $showPicker) {
                PhotoPicker(
                    onPicked: { image in
                        showPicker = false
                        model.addPhoto(image)
                    },
                    onCancel: { showPicker = false })
                .ignoresSafeArea()
            }
            .alert("report.saved.title", isPresented: savedAlertShown) {
                Button("common.ok", role: .cancel) {}
            } message: {
                Text(verbatim: model.savedNotice ?? "")
            }
        }
    }

    private var photosSection: some View {
        Section {
            ScrollView(.horizontal, showsIndicators: false) {
                HStack(spacing: 8) {
                    ForEach(model.photos) { photo in
                        PhotoThumbnail(photo: photo) {
                            model.removePhoto(id: photo.id)
                        }
                    }
                    if model.ingestingPhotos > 0 {
                        ProgressView()
                            .frame(width: 72, height: 72)
                    }
                }
            }
            Button {
                showPicker = true
            } label: {
                Label(pickPhotoTitle, systemImage: "camera.fill")
            }
            .disabled(!model.canAddPhoto)
        } header: {
            Text("report.section.photos")
        } footer: {
            Text("report.photos.footer")
        }
    }

    /// "拍照" with a camera, "从相册选择" without one (the simulator).
    private var pickPhotoTitle: LocalizedStringKey {
        PhotoPicker.sourceType == .camera ? "report.photo.take" : "report.photo.choose"
    }

    private var savedAlertShown: Binding<Bool> {
        Binding(
            get: { model.savedNotice != nil },
            set: { shown in
                if !shown { model.savedNotice = nil }
            })
    }
}

/// One attached photo, with a button to leave it out.
private struct PhotoThumbnail: View {
    let photo: AttachedPhoto
    let onRemove: () -> Void

    var body: some View {
        ZStack(alignment: .topTrailing) {
            Group {
                if let image = photo.thumbnail {
                    Image(uiImage: image)
                        .resizable()
                        .scaledToFill()
                } else {
                    Image(systemName: "photo")
                        .foregroundStyle(.secondary)
                }
            }
            .frame(width: 72, height: 72)
            .clipShape(RoundedRectangle(cornerRadius: 8))

            Button(action: onRemove) {
                Image(systemName: "xmark.circle.fill")
                    .symbolRenderingMode(.palette)
                    .foregroundStyle(Color.white, Color.black.opacity(0.6))
            }
            .buttonStyle(.plain)
            .accessibilityLabel(Text("report.photo.remove"))
            .padding(2)
        }
    }
}
