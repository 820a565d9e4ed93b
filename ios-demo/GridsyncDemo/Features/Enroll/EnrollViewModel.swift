import Foundation
import Observation

/// The enrollment form: the relay's address and the one-time code a dispatcher
/// issued (`gridsync admin enroll --user …`). The code is typed or pasted; it is
/// never stored, and the token the relay answers with goes only to the engine.
@MainActor
@Observable
final class EnrollViewModel {
    var serverURL: String
    var code = ""
    private(set) var isWorking = false
    private(set) var errorMessage: String?

    private static let lastServerKey = "gridsync.lastServerURL"

    init() {
        serverURL = UserDefaults.standard.string(forKey: Self.lastServerKey) ?? "http://"
    }

    var canSubmit: Bool {
        !isWorking
            && !code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            && serverURL.count > "http://".count
    }

    func submit(app: AppModel) async {
        guard canSubmit else { return }
        isWorking = true
        errorMessage = nil
        defer { isWorking = false }
        UserDefaults.standard.set(serverURL, forKey: Self.lastServerKey)
        do {
            try await app.register(serverURL: serverURL, code: code)
            code = ""
        } catch {
            errorMessage = Self.message(for: error)
        }
    }

    private static func message(for error: Error) -> String {
        // At enrollment a 401 means the code is wrong, used or expired.
        if let error = error as? GridsyncError, case .Unauthorized = error {
            return L.s("enroll.error.badCode")
        }
        return ErrorText.message(error)
    }
}
