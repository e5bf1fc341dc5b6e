public import Store

/// Everything that can go wrong for a rep or a technician using the device database, each with
/// what went wrong, where, and what to do next. Every case maps to one documented exit code
/// (docs/rep-guide.md#exit-codes), so scripts on the device can react without parsing text.
public enum FieldError: Error, CustomStringConvertible, Sendable, Equatable {
    case notInitialised(home: String)
    case alreadyInitialised(home: String, device: String)
    case noPermission(path: String, detail: String)
    case damagedDatabase(path: String, detail: String)
    case foreignDatabase(path: String, detail: String)
    case newerSchema(path: String, detail: String)
    case storageFull(path: String)
    case storageFailed(path: String, detail: String)
    case busy(path: String)
    case unknownCustomer(String)
    case unknownProduct(String, context: String)
    case unknownOrder(String)
    case unknownPayment(String)
    case paymentAlreadyVoided(id: String, by: String)
    case duplicateReceipt(receipt: String, payment: String, customer: String, amount: String)
    case unknownUnit(part: String, unit: String, known: [String])
    case unknownDisplayType(String, known: [String])
    case unknownEquipment(String)
    case invalidInput(what: String, value: String, reason: String)
    case priceLevelUnavailable(customer: String, level: String, available: [String])
    case noPrice(part: String, level: String, currency: String)
    case orderNotDraft(id: String, state: String)
    case invalidTransition(id: String, from: String, to: String)
    case internalError(String)

    public var description: String {
        switch self {
        case .notInitialised(let home):
            return "no device database in \(home): run `satchel init --device ID --rep ID` (or pass --home / SATCHEL_HOME for another data directory)"
        case .alreadyInitialised(let home, let device):
            return "\(home) already holds the database of device \(device); nothing was changed"
        case .noPermission(let path, let detail):
            return "no permission to use \(path) (\(detail)): run satchel as the device user or ask a technician to fix the permissions; nothing was written"
        case .damagedDatabase(let path, let detail):
            return "the database \(path) is damaged (\(detail)); refusing to use it, nothing is written to it: restore it from the card with `satchel restore` (the damaged file is kept aside), or call a technician (docs/technician-guide.md)"
        case .foreignDatabase(let path, let detail):
            return "\(path) is not a Satchel device database (\(detail)); refusing to touch it"
        case .newerSchema(let path, let detail):
            return "\(path) was written by a newer satchel (\(detail)); update satchel on this device, nothing was changed"
        case .storageFull(let path):
            return "storage is full writing \(path): nothing was saved; free space on the device (sync, or ask a technician) and try again"
        case .storageFailed(let path, let detail):
            return "storage failed writing \(path) (\(detail)): nothing was saved; try again, and call a technician if it repeats"
        case .busy(let path):
            return "\(path) is busy (another satchel command holds it); nothing was saved, try again in a moment"
        case .unknownCustomer(let id):
            return "unknown customer '\(id)': not in this device's working set (search with `satchel customer find NAME`)"
        case .unknownProduct(let part, let context):
            return "unknown part number '\(part)' \(context): not in this device's catalogue"
        case .unknownOrder(let id):
            return "unknown order '\(id)' (list them with `satchel order list`)"
        case .unknownPayment(let id):
            return "unknown payment '\(id)' on this device (its id is printed when it is saved; payments leave the handheld 30 days after sync: ask the office to correct an older one)"
        case .paymentAlreadyVoided(let id, let by):
            return "payment \(id) is already voided (by \(by)); nothing was changed"
        case .duplicateReceipt(let receipt, let payment, let customer, let amount):
            return "receipt '\(receipt)' is already used by payment \(payment) (\(amount) from \(customer)): each receipt of the book is used once; check the number on the paper receipt (a payment saved by mistake is voided with `satchel payment void \(payment) --reason ...`)"
        case .unknownUnit(let part, let unit, let known):
            return "part \(part) is not sold in unit '\(unit)' (units: \(known.joined(separator: ", ")))"
        case .unknownDisplayType(let code, let known):
            return "unknown display type '\(code)' (types: \(known.joined(separator: ", ")))"
        case .unknownEquipment(let id):
            return "unknown equipment '\(id)'"
        case .invalidInput(let what, let value, let reason):
            return "\(what) '\(value)': \(reason)"
        case .priceLevelUnavailable(let customer, let level, let available):
            return "customer \(customer) has no '\(level)' price level (available: \(available.joined(separator: ", ")))"
        case .noPrice(let part, let level, let currency):
            return "part \(part) has no \(level) price in \(currency); ask the office to publish one, or choose another price level"
        case .orderNotDraft(let id, let state):
            return "order \(id) is \(state), not a draft: its lines cannot change (start a new order instead)"
        case .invalidTransition(let id, let from, let to):
            return "order \(id) cannot go from \(from) to \(to)"
        case .internalError(let detail):
            return "internal error: \(detail)"
        }
    }

    /// Exit codes follow sysexits(3) where one fits, so they read the same as other Unix tools'.
    public var exitCode: Int32 {
        switch self {
        case .unknownCustomer, .unknownProduct, .unknownOrder, .unknownPayment, .paymentAlreadyVoided, .duplicateReceipt, .unknownUnit, .unknownDisplayType,
             .unknownEquipment, .invalidInput, .priceLevelUnavailable, .noPrice, .orderNotDraft,
             .invalidTransition:
            return 65  // EX_DATAERR
        case .notInitialised: return 66  // EX_NOINPUT
        case .damagedDatabase, .foreignDatabase, .newerSchema: return 69  // EX_UNAVAILABLE
        case .alreadyInitialised: return 73  // EX_CANTCREAT
        case .storageFull, .storageFailed: return 74  // EX_IOERR
        case .busy: return 75  // EX_TEMPFAIL
        case .noPermission: return 77  // EX_NOPERM
        case .internalError: return 70  // EX_SOFTWARE
        }
    }

    /// Translates a storage failure into what it means for the rep. Constraint failures are
    /// programming errors here (input is validated first), so they surface as internal errors.
    public static func from(_ error: StoreError, path: String) -> FieldError {
        if error.isAuthenticationFailure {
            return .damagedDatabase(path: path, detail: "a page of the encrypted database failed authentication: it was changed outside satchel, or it is not this device's file (another key)")
        }
        switch error.kind {
        case .full: return .storageFull(path: path)
        case .corrupt: return .damagedDatabase(path: path, detail: error.message)
        case .noAccess: return .noPermission(path: path, detail: error.message)
        case .busy: return .busy(path: path)
        case .io: return .storageFailed(path: path, detail: error.message)
        case .constraint, .other: return .internalError(error.description)
        }
    }
}
