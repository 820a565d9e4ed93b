import Foundation
import Observation

/// The enrollment form: the relay's address and the one-time code a dispatcher
/// issued (`gridsync admin enroll --user …`, or a card of the console's 设备注册码
/// sheet). Both are typed, or filled by scanning the card's QR code (`scanned`). The
/// code is never stored, and the token the relay answers with goes only to the engine.
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
    /// The QR scanner sheet is up.
    var isScanning = false
    /// Why the last QR code the scanner saw was not used.
    private(set) var scanMessage: String?

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

    /// Open the QR scanner sheet.
    func startScan() {
        scanMessage = nil
        isScanning = true
    }

    /// Close it without a link; the form stays as it was.
    func cancelScan() {
        isScanning = false
    }

    /// A QR code the scanner saw. An enrollment link (`gridsync://enroll?server=…&code=…`,
    /// checked by the core's `parseEnrollmentLink`) fills the address and the code and
    /// closes the scanner; the worker sees which server it names and submits herself, a
    /// plain `http://` address being asked about as when typed (a forged card must not
    /// send her code somewhere unseen). Any other code leaves the form as it was and says
    /// so; the scanner stays open.
    func scanned(_ text: String) {
        guard isScanning else { return }
        do {
            let link = try parseEnrollmentLink(text: text)
            serverURL = link.serverUrl
            code = link.code
            errorMessage = nil
            scanMessage = nil
            isScanning = false
        } catch {
            scanMessage = L.s("enroll.scan.notEnrollment")
        }
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
