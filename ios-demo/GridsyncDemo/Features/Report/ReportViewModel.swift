import Foundation
import Observation
import UIKit

/// A photo already through the engine's capture pipeline, waiting for the report.
struct AttachedPhoto: Identifiable {
    let record: PhotoRecord
    let thumbnail: UIImage?

    var id: String { record.hash }
}

/// 事件上报: the form, its photos and the report itself. A photo is ingested as soon
/// as it is taken (orientation applied, metadata stripped, stored durably), so the
/// report only carries the hashes; the report is committed on the phone and synced
/// whenever the relay can be reached.
@MainActor
@Observable
final class ReportViewModel {
    var title = ""
    var details = ""
    var categoryCode: String
    var subcategoryCode: String?
    var severity = "normal"
    var address = ""
    var attachLocation = true
    private(set) var photos: [AttachedPhoto] = []
    private(set) var ingestingPhotos = 0
    private(set) var isSaving = false
    var errorMessage: String?
    var savedNotice: String?

    /// The directory's categories: those read at enrollment until `reloadCategories`
    /// has read the engine's directory (again after a sync that brought a newer one).
    private(set) var categories: [CaseCategory]
    private let engine: EngineClient
    private let location: LocationService

    /// Called after a case is committed (the session syncs then).
    @ObservationIgnored var onReported: (() -> Void)?

    nonisolated static let severities = ["low", "normal", "high", "urgent"]
    static let maxPhotos = 9

    init(engine: EngineClient, location: LocationService, categories: [CaseCategory]) {
        self.engine = engine
        self.location = location
        self.categories = categories
        self.categoryCode = categories.first?.code ?? "city"
    }

    var subcategories: [CaseSubcategory] {
        categories.first { $0.code == categoryCode }?.subcategories ?? []
    }

    var canAddPhoto: Bool {
        photos.count + ingestingPhotos < Self.maxPhotos
    }

    var canSubmit: Bool {
        !isSaving && ingestingPhotos == 0
            && !title.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// Read the categories from the directory the engine holds, keeping the choice
    /// while the directory still has it. On failure the form keeps what it shows.
    func reloadCategories() async {
        guard let directory = try? await engine.directory() else { return }
        let fresh = directory.categories.map { c in
            CaseCategory(
                code: c.code, name: c.name, nameEn: c.nameEn,
                subcategories: c.subcategories.map {
                    CaseSubcategory(code: $0.code, name: $0.name, nameEn: $0.nameEn)
                })
        }
        guard !fresh.isEmpty, fresh != categories else { return }
        categories = fresh
        if !fresh.contains(where: { $0.code == categoryCode }) {
            categoryCode = fresh[0].code
        }
        categoryChanged()
    }

    /// Keep the subcategory only if it belongs to the chosen category.
    func categoryChanged() {
        if let code = subcategoryCode, !subcategories.contains(where: { $0.code == code }) {
            subcategoryCode = nil
        }
    }

    func prepareLocation() {
        if attachLocation {
            location.requestPermission()
        }
    }

    /// JPEG-encode the picture off the main thread, run it through `ingestPhoto`, and
    /// show the engine's own thumbnail.
    func addPhoto(_ image: UIImage) {
        ingestingPhotos += 1
        Task {
            defer { self.ingestingPhotos -= 1 }
            do {
                let jpeg = try await Self.jpegData(from: image)
                let record = try await self.engine.ingestPhoto(jpeg: jpeg)
                let thumbnail = try? await self.engine.photoBytes(hash: record.thumb)
                self.photos.append(
                    AttachedPhoto(record: record, thumbnail: thumbnail.flatMap { UIImage(data: $0) }))
            } catch {
                self.errorMessage = ErrorText.message(error)
            }
        }
    }

    /// Leave a photo out of this report (its stored copy stays on the phone).
    func removePhoto(id: String) {
        photos.removeAll { $0.id == id }
    }

    func submit() async {
        let title = self.title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !title.isEmpty else {
            errorMessage = AppError.titleRequired.message
            return
        }
        guard canSubmit else { return }
        isSaving = true
        errorMessage = nil
        defer { isSaving = false }

        var fix: LocationFix?
        if attachLocation {
            fix = await location.currentFix()
        }
        var details = self.details.trimmingCharacters(in: .whitespacesAndNewlines)
        let address = self.address.trimmingCharacters(in: .whitespacesAndNewlines)
        if fix == nil && !address.isEmpty {
            // The bindings keep an address only together with coordinates; without a
            // fix, keep it in the description rather than lose it.
            details += (details.isEmpty ? "" : "\n\n") + L.f("report.addressInDescription", address)
        }
        let record = NewCaseRecord(
            title: title,
            description: details,
            category: categoryCode,
            subcategory: subcategoryCode,
            severity: severity,
            grid: nil,
            lat: fix?.latitude,
            lon: fix?.longitude,
            address: address,
            photos: photos.map { $0.record.hash })
        do {
            _ = try await engine.reportCase(record)
            let located = fix != nil || !attachLocation
            reset()
            savedNotice = L.s(located ? "report.saved" : "report.saved.noLocation")
            onReported?()
        } catch {
            errorMessage = ErrorText.message(error)
        }
    }

    private func reset() {
        title = ""
        details = ""
        subcategoryCode = nil
        severity = "normal"
        address = ""
        photos = []
    }

    private nonisolated static func jpegData(from image: UIImage) async throws -> Data {
        let encode = Task.detached(priority: .userInitiated) { () throws -> Data in
            guard let data = image.jpegData(compressionQuality: 0.85) else {
                throw AppError.photoEncoding
            }
            return data
        }
        return try await encode.value
    }
}
