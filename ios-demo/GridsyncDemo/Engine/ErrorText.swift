import Foundation

/// Turns errors into text for the person holding the phone. Engine reasons are
/// shown on screen (they name fields and codes, never residents' details) and are
/// never logged.
enum ErrorText {
    static func message(_ error: Error) -> String {
        guard let error = error as? GridsyncError else {
            if let error = error as? AppError { return error.message }
            return L.s("error.unknown")
        }
        switch error {
        case .Network:
            return L.s("error.network")
        case .Unauthorized(_, let wipe):
            return L.s(wipe ? "error.revoked" : "error.unauthorized")
        case .NotFound:
            return L.s("error.notFound")
        case .Refused(let reason):
            return L.f("error.refused", reason)
        case .InvalidInput(let reason):
            return L.f("error.invalidInput", reason)
        case .Storage(let reason):
            return L.f("error.storage", reason)
        case .WrongKey:
            return L.s("error.wrongKey")
        case .Wiped:
            return L.s("error.wiped")
        case .Closed:
            return L.s("error.closed")
        case .Other(let reason):
            return L.f("error.other", reason)
        }
    }

    /// Whether the error means "no network or no answer": the work is safe on the
    /// phone and the next sync will carry it.
    static func isNetwork(_ error: Error) -> Bool {
        if let error = error as? GridsyncError, case .Network = error { return true }
        return false
    }
}

/// Errors the app itself raises before reaching the engine.
enum AppError: Error {
    case badServerURL
    case emptyCode
    case photoEncoding
    case titleRequired

    var message: String {
        switch self {
        case .badServerURL: return L.s("error.badServerURL")
        case .emptyCode: return L.s("error.emptyCode")
        case .photoEncoding: return L.s("error.photoEncoding")
        case .titleRequired: return L.s("error.titleRequired")
        }
    }
}
