import Modem

/// The SIM PIN at unlock (issue 14): after the app password, when this handheld has a modem and
/// its SIM asks for a PIN, the PIN is asked too and sent under the modem's safety rules
/// (`Modem.unlock`: the state and attempts read first, sent at most once, never with
/// `pinFloor` attempts left or fewer, never a PUK). The doctor's bounded modem options apply.
public enum SIMAtUnlock: Sendable, Equatable {
    /// No modem configured (device.conf `modem_port`, or the board's).
    case noModem
    case ready
    case unlocked(attemptsBefore: Int?)
    /// The SIM asked, but no PIN was given: nothing sent.
    case notGiven(attemptsLeft: Int?)
    /// Not sent, or sent and refused, or the modem could not be asked: what and what to do.
    case problem(String)

    public var message: String {
        switch self {
        case .noModem: return "no modem configured"
        case .ready: return "the SIM is ready; no PIN asked"
        case .unlocked(let before): return "SIM unlocked\(before.map { " (\($0) attempts were left)" } ?? "")"
        case .notGiven(let left): return "the SIM asks for its PIN\(left.map { " (\($0) attempts left)" } ?? ""); none given, nothing sent: satchel modem unlock"
        case .problem(let text): return text
        }
    }
}

extension DeviceAgent {
    /// Asks the modem for the SIM's state; only when it wants a PIN and more attempts than
    /// `floor` are left is `pin` called (it reads the PIN; nil: none given) and the PIN sent once.
    public func unlockSIM(floor: Int = 1, modem options: DoctorModemOptions = DoctorModemOptions(),
                          pin: () -> String?) -> SIMAtUnlock {
        do {
            guard let (modem, _) = try openConfiguredModem(options) else { return .noModem }
            defer { modem.close() }
            modem.config.pinFloor = floor
            let status = try modem.simStatus()
            switch status.state {
            case .ready: return .ready
            case .pinRequired: break
            case .pukRequired: throw ModemError.pukRequired(pukAttemptsLeft: status.pukAttempts)
            case .notInserted: throw ModemError.simNotInserted
            default: throw ModemError.simLocked(status.state)
            }
            // At or below the floor the PIN is not even asked: the last attempts belong to a technician.
            if let left = status.pinAttempts, left <= floor { throw ModemError.pinRefused(attemptsLeft: left, floor: floor) }
            guard let text = pin() else { return .notGiven(attemptsLeft: status.pinAttempts) }
            switch try modem.unlock(pin: try SIMPIN(text)) {
            case .alreadyReady: return .ready
            case .unlocked(let before): return .unlocked(attemptsBefore: before)
            }
        } catch {
            return .problem("SIM: \(error)")
        }
    }
}
