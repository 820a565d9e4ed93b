import Foundation
import Observation

/// The enrollment form: the relay's address and the one-time code a dispatcher
/// issued (`gridsync admin enroll --user …`). The code is typed or pasted; it is
/// never stored, and the token the relay answers with goes only to the engine.
///
/// The address decides the transport (`ServerAddress`): `https://` enrolls at once;
/// plain `http://` to this phone, the emulator's host or a private LAN address asks
/// first (`plainHttpQuestion`, shown as an alert) and enrolls with plain HTTP allowed
/// only once the user confirms it is a test server; any other plain `http://` is
/// refused before anything is sent.
@MainActor
@Observable
final class EnrollViewModel {
    var serverURL: String
    var code = ""
    private(set) var isWorking = false
    private(set) var errorMessage: String?
    /// A plain `http://` address waiting for the user's answer to 这是测试服务器吗？
    var plainHttpQuestion: String?
    /// The plain `http://` address the user said is a test server (another address is asked about again).
    private var confirmedPlainHttpURL: String?

    private static let lastServerKey = "gridsync.lastServerURL"

    init() {
        serverURL = UserDefaults.standard.string(forKey: Self.lastServerKey) ?? "https://"
    }

    var canSubmit: Bool {
        !isWorking
            && !code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            && !serverURL.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    func submit(app: AppModel) async {
        guard canSubmit, plainHttpQuestion == nil else { return }
        errorMessage = nil
        let address = ServerAddress(typed: serverURL)
        let url: String
        let plainHttp: Bool
        switch address {
        case .invalid:
            errorMessage = L.s("error.badServerURL")
            return
        case .plainHttpPublic:
            errorMessage = L.s("enroll.error.plainHttpRefused")
            return
        case .secure(let secure):
            url = secure
            plainHttp = false
        case .plainHttpLocal(let local, _):
            guard confirmedPlainHttpURL == local else {
                plainHttpQuestion = local
                return
            }
            url = local
            plainHttp = true
        }
        isWorking = true
        defer { isWorking = false }
        UserDefaults.standard.set(serverURL, forKey: Self.lastServerKey)
        do {
            try await app.register(serverURL: url, code: code, allowPlainHttp: plainHttp)
            code = ""
        } catch {
            errorMessage = Self.message(for: error)
        }
    }

    /// "Yes, `url` is a test server": enroll over plain HTTP with it. The URL is the
    /// one the alert showed (the alert may clear the question before this runs).
    func confirmPlainHttp(_ url: String, app: AppModel) async {
        plainHttpQuestion = nil
        confirmedPlainHttpURL = url
        await submit(app: app)
    }

    /// "No": nothing is sent; the form stays as typed.
    func declinePlainHttp() {
        plainHttpQuestion = nil
    }

    private static func message(for error: Error) -> String {
        // At enrollment a 401 means the code is wrong, used or expired.
        if let error = error as? GridsyncError, case .Unauthorized = error {
            return L.s("enroll.error.badCode")
        }
        return ErrorText.message(error)
    }
}
