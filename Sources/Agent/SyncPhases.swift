import Modem
import Sync
import Transport

/// When a sync reached each of its phases, on the monotonic clock (CLOCK_MONOTONIC seconds, the
/// clock `satchel-sim`'s benches time the process with): `satchel sync --json` prints them as
/// `phases`, so a technician (or a bench) reads where a slow sync's seconds went: the process,
/// the database, the modem's set-up, the session, the apply and checks, the hang-up, the card.
/// A phase the sync did not pass through (no modem, no download, no card) is absent; one passed
/// more than once (a frame applied, a busy hub's retry) keeps its last time.
public final class SyncPhases {
    public enum Phase: String, Sendable, CaseIterable {
        /// The sync command began (after the runtime's start and the argument parsing).
        case start
        /// The database is open for writing (the data key unsealed, a locked handheld let through).
        case unlocked
        /// The card holds every change that is about to leave the device (the snapshot before the session).
        case cardBefore = "card_before"
        /// The modem answers, its SIM is ready and it is registered on the network.
        case modemRegistered = "modem_registered"
        /// The packet data context is up (SIMCom `AT+CIICR` answered, or pppd's link).
        case contextUp = "context_up"
        /// The TCP connection to the hub is open (over the modem or the host's network).
        case tcpConnected = "tcp_connected"
        case handshakeDone = "handshake_done"
        /// The one flight up (AUTH, the batches, PULL or BYE) is written.
        case uploadSent = "upload_sent"
        /// The last TABLE frame is applied and committed.
        case applied
        /// DONE arrived: the whole download is in.
        case downloadDone = "download_done"
        /// The working set's checksums are compared with the hub's.
        case verified
        /// The receipt, the hub's mark and the housekeeping are written on the device.
        case recorded
        /// The link is closed: the modem hung up and back in command mode, or the socket closed.
        case hungUp = "hung_up"
        /// The card's snapshot after a download is written.
        case snapshotWritten = "snapshot_written"
        /// The report is about to be printed: the command's last step before the process exits.
        case exit
    }

    public struct Mark: Codable, Sendable, Equatable {
        public var phase: String
        /// CLOCK_MONOTONIC, seconds (microsecond resolution).
        public var at: Double
    }

    public private(set) var marks: [Mark] = []

    public init() {}

    /// Records `phase` as reached now.
    public func mark(_ phase: Phase) {
        let now = Double(Deadline.monotonicNanoseconds() / 1_000) / 1e6
        marks.removeAll { $0.phase == phase.rawValue }
        marks.append(Mark(phase: phase.rawValue, at: now))
    }

    func reached(_ step: SessionStep) {
        switch step {
        case .handshakeDone: mark(.handshakeDone)
        case .uploadSent: mark(.uploadSent)
        case .applied: mark(.applied)
        case .downloadDone: mark(.downloadDone)
        case .verified: mark(.verified)
        }
    }

    func reached(_ step: DataSessionStep) {
        switch step {
        case .contextUp: mark(.contextUp)
        case .connected: mark(.tcpConnected)
        }
    }
}
