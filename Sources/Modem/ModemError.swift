/// Everything that can go wrong with the modem, each with a message a technician can act on.
/// Commands in these errors are already redacted; PINs never appear.
public enum ModemError: Error, Equatable, CustomStringConvertible {
    case portNotFound(String)
    case notASerialDevice(String)
    case permissionDenied(String)
    /// Another process holds the port (UUCP lock with a live pid, or TIOCEXCL).
    case portInUse(String, pid: Int32?)
    case lockFailed(String, errno: Int32)
    case system(String, errno: Int32)
    /// A command got no final result before its deadline.
    case noAnswer(command: String)
    /// The recovery ladder ran out of steps.
    case notResponding(port: String, tried: [String])
    case commandFailed(command: String, result: FinalResult)
    case profile(String)
    case invalidPIN
    case simLocked(SIMState)
    /// Not sent: the attempts left are at or below the floor, or unknown.
    case pinRefused(attemptsLeft: Int?, floor: Int)
    case pinRejected(attemptsLeft: Int?)
    case pukRequired(pukAttemptsLeft: Int?)
    case simNotInserted
    case simBusy
    case pinOutcomeUnknown
    case notRegistered(RegistrationStatus)
    case registrationDenied
    case sessionFailed(step: String, result: FinalResult?)
    case badAddress(String)
    /// pppd is not installed where the profile or `--pppd` says.
    case pppdMissing(path: String)
    /// pppd ended, or did not bring the link up in time; its last words are kept.
    case pppFailed(reason: String, pppdSaid: String)

    public var description: String {
        switch self {
        case .portNotFound(let port): return "no such port \(port) (is the modem plugged in and powered? see the udev rule in hardware/udev)"
        case .notASerialDevice(let port): return "\(port) is not a serial device"
        case .permissionDenied(let port): return "no permission to open \(port) (the satchel user must be in the dialout group)"
        case .portInUse(let port, let pid):
            return pid.map { "\(port) is in use by process \($0)" } ?? "\(port) is in use by another process"
        case .lockFailed(let path, let code): return "cannot create lock file \(path): \(errnoText(code))"
        case .system(let what, let code): return "\(what): \(errnoText(code))"
        case .noAnswer(let command): return "no answer to \(command) from the modem"
        case .notResponding(let port, let tried):
            return "the modem on \(port) does not answer (tried: \(tried.joined(separator: ", ")))"
        case .commandFailed(let command, let result): return "\(command) failed: \(result)"
        case .profile(let text): return "modem profile: \(text)"
        case .invalidPIN: return "a PIN is 4 to 8 digits"
        case .simLocked(let state): return "the SIM is locked (\(state.name)); run `satchel modem unlock` first"
        case .pinRefused(let left, let floor):
            if let left { return "PIN not sent: \(left) attempt\(left == 1 ? "" : "s") left, at or below the safety floor of \(floor); the last attempts belong to a technician" }
            return "PIN not sent: the modem cannot tell how many attempts are left (a wrong PIN could block the SIM)"
        case .pinRejected(let left):
            return "the SIM rejected the PIN; it was not sent again (\(left.map { "\($0) attempts left" } ?? "attempts left unknown"))"
        case .pukRequired(let left):
            return "the SIM is blocked and needs its PUK (\(left.map { "\($0) PUK attempts left" } ?? "PUK attempts unknown")): call a technician"
        case .simNotInserted: return "no SIM card (or the SIM failed)"
        case .simBusy: return "the SIM stayed busy; the PIN was not sent again"
        case .pinOutcomeUnknown: return "the modem did not say whether it accepted the PIN; it was not sent again (check with `satchel modem probe`)"
        case .notRegistered(let status): return "not registered on a network (\(status.name))"
        case .registrationDenied: return "the network denied registration (SIM not provisioned, barred or out of credit)"
        case .sessionFailed(let step, let result): return "data session failed at \(step)\(result.map { ": \($0)" } ?? "")"
        case .badAddress(let text): return "\(text) is not HOST:PORT"
        case .pppdMissing(let path): return "pppd not found at \(path): install the ppp package (apt-get install ppp), or give its path with --pppd"
        case .pppFailed(let reason, let said):
            return "PPP link not up: \(reason)\(said.isEmpty ? "" : "; pppd said: \(said)"). The modem was hung up"
        }
    }
}

func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
