import Foundation

/// A category of the case taxonomy, as the report form shows it.
struct CaseCategory: Codable, Hashable, Identifiable, Sendable {
    var code: String
    var name: String
    var nameEn: String
    var subcategories: [CaseSubcategory]

    var id: String { code }
    var displayName: String { L.isEnglish ? nameEn : name }
}

/// A subcategory (`livelihood.water_leak`, …).
struct CaseSubcategory: Codable, Hashable, Identifiable, Sendable {
    var code: String
    var name: String
    var nameEn: String

    var id: String { code }
    var displayName: String { L.isEnglish ? nameEn : name }
}

/// What the app needs from the directory the relay sent at enrollment: the user's
/// role and region, and the taxonomy, kept in a small file of its own (written before
/// the bindings exposed the directory). The report form starts with these categories
/// and then reads the engine's directory (`ReportViewModel.reloadCategories`). Staff
/// names are not copied.
struct DirectoryFacts: Codable, Sendable {
    var role: String?
    var regionCode: String?
    var regionName: String?
    var categories: [CaseCategory]

    var isGridWorker: Bool { role == "grid_worker" }

    /// Read the facts for `userId` out of the directory JSON (see
    /// `docs/directory-format.md`); unknown fields are ignored.
    static func parse(directoryJSON: String, userId: String) -> DirectoryFacts {
        guard let data = directoryJSON.data(using: .utf8),
              let file = try? JSONDecoder().decode(DirectoryFile.self, from: data)
        else { return .fallback }
        let user = file.users.first { $0.id == userId }
        let region = user.flatMap { u in file.regions.first { $0.code == u.region } }
        let categories = file.taxonomy.map { c in
            CaseCategory(
                code: c.code, name: c.name, nameEn: c.name_en,
                subcategories: c.subcategories.map {
                    CaseSubcategory(code: $0.code, name: $0.name, nameEn: $0.name_en)
                })
        }
        return DirectoryFacts(
            role: user?.role, regionCode: user?.region, regionName: region?.name,
            categories: categories.isEmpty ? fallback.categories : categories)
    }

    /// The six default domains, for a device whose facts file is missing.
    static let fallback = DirectoryFacts(
        role: nil, regionCode: nil, regionName: nil,
        categories: [
            CaseCategory(code: "city", name: "城市管理", nameEn: "City management", subcategories: []),
            CaseCategory(code: "safety", name: "安全生产", nameEn: "Work safety", subcategories: []),
            CaseCategory(code: "security", name: "社会治安", nameEn: "Public security", subcategories: []),
            CaseCategory(code: "petition", name: "信访稳定", nameEn: "Petitions & stability", subcategories: []),
            CaseCategory(code: "dispute", name: "矛盾纠纷调解", nameEn: "Dispute mediation", subcategories: []),
            CaseCategory(code: "livelihood", name: "民生服务", nameEn: "Livelihood services", subcategories: []),
        ])
}

/// The part of the directory file this app reads (field names as in the JSON).
private struct DirectoryFile: Decodable {
    struct Region: Decodable {
        var code: String
        var name: String
    }

    struct User: Decodable {
        var id: String
        var role: String
        var region: String
    }

    struct Category: Decodable {
        struct Sub: Decodable {
            var code: String
            var name: String
            var name_en: String
        }

        var code: String
        var name: String
        var name_en: String
        var subcategories: [Sub]
    }

    var regions: [Region]
    var users: [User]
    var taxonomy: [Category]
}
