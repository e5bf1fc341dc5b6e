/// A step a sync reaches, in the order it reaches them: `satchel sync --json` prints when each
/// was reached (`phases`, CLOCK_MONOTONIC seconds, the clock `satchel-sim`'s benches time the
/// process with), so a technician or a bench reads where a slow sync's seconds went. Here, beside
/// `Deadline`'s clock, because the modem (`Modem.openStream`) and the session (`SyncClient.run`)
/// report their steps through one `(SyncPhase) -> Void` the agent owns (`DeviceAgent.reached`):
/// a raw value indexes a fixed array of times, so the whole feature stays a few hundred bytes.
public enum SyncPhase: UInt8, Sendable {
    /// The sync command began (after the runtime's start and the argument parsing).
    case start
    /// The database is open for writing (the data key unsealed, a locked handheld let through).
    case unlocked
    /// The card holds every change that is about to leave the device (the snapshot before the session).
    case cardBefore
    /// The modem answers, its SIM is ready and it is registered on the network.
    case modemRegistered
    /// The packet data context is up (SIMCom `AT+CIICR` answered, or pppd's link).
    case contextUp
    /// The TCP connection to the hub is open (over the modem or the host's network).
    case tcpConnected
    /// The Noise handshake is done (HELLO answered by WELCOME).
    case handshakeDone
    /// The one flight up (AUTH, the batches, PULL or BYE) is written.
    case uploadSent
    /// The last TABLE frame is applied and committed.
    case applied
    /// DONE arrived: the whole download is in.
    case downloadDone
    /// The working set's checksums are compared with the hub's.
    case verified
    /// The receipt, the hub's mark and the housekeeping are written on the device.
    case recorded
    /// The link is closed: the modem hung up and back in command mode, or the socket closed.
    case hungUp
    /// The card's snapshot after a download is written.
    case snapshotWritten
    /// The report is about to be printed: the command's last step before the process exits.
    case exit

    /// How many phases there are (the last one's raw value plus one).
    public static let count = Int(SyncPhase.exit.rawValue) + 1

    /// The name `phases` prints.
    public var name: String {
        switch self {
        case .start: "start"
        case .unlocked: "unlocked"
        case .cardBefore: "card_before"
        case .modemRegistered: "modem_registered"
        case .contextUp: "context_up"
        case .tcpConnected: "tcp_connected"
        case .handshakeDone: "handshake_done"
        case .uploadSent: "upload_sent"
        case .applied: "applied"
        case .downloadDone: "download_done"
        case .verified: "verified"
        case .recorded: "recorded"
        case .hungUp: "hung_up"
        case .snapshotWritten: "snapshot_written"
        case .exit: "exit"
        }
    }
}
