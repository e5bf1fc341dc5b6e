import Field
import Journal
public import Modem
public import Sync
import SystemCalls
public import Transport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a sync reaches the hub.
public enum SyncLink {
    /// TCP over the host's network (or the operator's APN routed to it).
    case network
    /// The GSM modem's own data session (transparent TCP), or TCP over the PPP link pppd brings up.
    case modem(ModemLink)
}

extension SyncLink {
    /// "network" or "modem", as the console and the reports say it.
    public var name: String {
        switch self {
        case .network: return "network"
        case .modem: return "modem"
        }
    }
}

/// How far a sync has got: the link, whether it is connecting (SIM, registration, data session,
/// TCP) or talking to the hub, and the bytes each way so far on the link.
public struct SyncProgress: Sendable, Equatable {
    public enum Phase: String, Sendable { case connecting, exchanging }
    public var link: String
    public var phase: Phase
    public var bytesUp = 0
    public var bytesDown = 0
    public init(link: String, phase: Phase, bytesUp: Int = 0, bytesDown: Int = 0) {
        self.link = link
        self.phase = phase
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
    }
}

/// A stream that counts what passes and says so after each read and write.
final class CountingStream: ByteStream {
    let inner: any ByteStream
    let counted: (Int, Int) -> Void
    private var up = 0
    private var down = 0

    init(_ inner: any ByteStream, counted: @escaping (Int, Int) -> Void) {
        self.inner = inner
        self.counted = counted
    }

    var endCause: Errno? { inner.endCause }

    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
        try inner.write(bytes, deadline: deadline)
        up += bytes.count
        counted(up, down)
    }

    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        let bytes = try inner.read(maxCount: maxCount, deadline: deadline)
        down += bytes.count
        counted(up, down)
        return bytes
    }

    func close() { inner.close() }
}

/// What a sync over the modem needs: how to open the modem (the command line knows its port,
/// profiles and options), the APN, and pppd for PPP profiles.
public struct ModemLink {
    public var open: () throws(ModemError) -> Modem
    public var apn: String
    public var user: String
    public var password: String
    public var pppd: String
    public var pppTimeout: Double

    public init(open: @escaping () throws(ModemError) -> Modem, apn: String, user: String = "", password: String = "",
                pppd: String = PPPLink.defaultPPPD, pppTimeout: Double = 45) {
        self.open = open
        self.apn = apn
        self.user = user
        self.password = password
        self.pppd = pppd
        self.pppTimeout = pppTimeout
    }
}

extension DeviceAgent {
    /// One sync with the hub, the whole of it: open the database for writing, bring the card up
    /// to date and snapshot it (what leaves the device is also on the card), connect (TCP, or the
    /// modem: SIM state, registration, data session), run the mode, hang up on every way out,
    /// and after a download snapshot again, so the card's newest snapshot holds the rows the
    /// device's documents now point at (a restore never brings back an order without its
    /// customer). `recovered` is upload mode's changes, read from the old card before any link
    /// is opened (`DeviceSync.recover`). `hub` overrides the pinned address for this sync.
    /// `progress` hears the link come up and every read and write on it (the console's progress
    /// bar): called on this thread, between reads and writes, so it must be quick.
    /// `phaseTimes` hear every phase from `.unlocked` to `.snapshotWritten` (the caller marks
    /// `.start` and `.exit`).
    public func sync(_ mode: SyncMode, password: String, over link: SyncLink, hub: String? = nil, recovered: DeviceSync.RecoveredChanges? = nil,
                     timeoutSeconds: Double = 120, notice: (String) -> Void = { _ in },
                     progress: @escaping (SyncProgress) -> Void = { _ in }) throws -> DeviceSync.Report {
        // A locked handheld may sync: reaching the hub is what unlocks it.
        for phase in 1..<SyncPhase.count { phaseTimes[phase] = 0 }
        try ensureWritable(notice: notice)
        let device = try openUnchecked(notice: notice)
        reached(.unlocked)
        if mirror(device).isHealthy, (try? snapshot(device)) != nil { reached(.cardBefore) }
        let sync = DeviceSync(self)
        var state = SyncProgress(link: link.name, phase: .connecting)
        progress(state)
        // A hub at its session cap says when to come back (ERROR 13): the device waits that long
        // and tries again, a few times and within its own timeout; past those it reports the
        // refusal (exit 75) and the rep syncs later. Nothing was sent or marked meanwhile.
        let started = Deadline.monotonicNanoseconds()
        var busyAttempts = 0
        var report = try obeyingWipeOrders { () throws -> DeviceSync.Report in
            while true {
                do {
                    return try connect(link, address: try sync.hubAddress(hub)) { opened, address in
                        state.phase = .exchanging
                        progress(state)
                        let stream = CountingStream(opened) { up, down in
                            state.bytesUp = up
                            state.bytesDown = down
                            progress(state)
                        }
                        if let recovered { return try sync.upload(recovered, password: password, over: stream, hub: address, timeoutSeconds: timeoutSeconds) }
                        return try sync.run(mode, device, password: password, over: stream, hub: address, timeoutSeconds: timeoutSeconds)
                    }
                } catch DeviceSync.Failure.hubBusy(let seconds, let message) {
                    busyAttempts += 1
                    let elapsed = Double(Deadline.monotonicNanoseconds() - started) / 1e9
                    guard busyAttempts <= Self.busyRetries, elapsed + Double(seconds) < timeoutSeconds else {
                        throw DeviceSync.Failure.hubBusy(retryAfterSeconds: seconds, message: message)
                    }
                    notice("the hub is busy: trying again in \(seconds) s (\(busyAttempts) of \(Self.busyRetries))")
                    state.phase = .connecting
                    progress(state)
                    sleep(UInt32(seconds))
                }
            }
        }
        // The hub holds less than it had acknowledged (restored from an older backup): its mark
        // came in this session's answer, after the one flight had gone up, so the changes it lost
        // go up in a second session now. Left to the next sync they would reach the office only
        // when the rep next syncs, after this one had said all was sent.
        if report.hubLacked > 0 && recovered == nil {
            notice("the hub holds \(report.hubLacked) change\(report.hubLacked == 1 ? "" : "s") fewer than it had acknowledged from this handheld (restored from an older backup?): sending \(report.hubLacked == 1 ? "it" : "them") again")
            state.phase = .connecting
            progress(state)
            let resent = try obeyingWipeOrders { () throws -> DeviceSync.Report in
                try connect(link, address: try sync.hubAddress(hub)) { opened, address in
                    state.phase = .exchanging
                    progress(state)
                    return try sync.run(.fast, device, password: password, over: opened, hub: address, timeoutSeconds: timeoutSeconds)
                }
            }
            report.resentToHub = resent.uploaded
            report.uploaded += resent.uploaded
            report.duplicates += resent.duplicates
            report.throughSeq = resent.throughSeq
            report.bytesUp += resent.bytesUp
            report.bytesDown += resent.bytesDown
            report.seconds += resent.seconds
            report.batchId = resent.batchId ?? report.batchId
            report.prunedDocuments += resent.prunedDocuments
            report.prunedChanges += resent.prunedChanges
            report.releasedRows += resent.releasedRows
        }
        let downloaded = report.pull != nil && (report.downloaded > 0 || report.documents > 0 || mode == .initialise || mode == .duplicate)
        if downloaded, mirror(device).isHealthy, (try? snapshot(device)) != nil { reached(.snapshotWritten) }
        return report
    }

    /// Records `phase` as reached now, or at `nanoseconds` on CLOCK_MONOTONIC (`phaseTimes`).
    public func reached(_ phase: SyncPhase, at nanoseconds: UInt64 = Deadline.monotonicNanoseconds()) {
        phaseTimes[Int(phase.rawValue)] = nanoseconds
    }

    /// How many times a sync the hub refused as busy is tried again before it reports the refusal.
    public static let busyRetries = 3

    /// Opens the link, runs `body` over it, and closes it (hangs the modem up) whatever happens.
    func connect<T>(_ link: SyncLink, address: String, _ body: (any ByteStream, String) throws -> T) throws -> T {
        switch link {
        case .network:
            let stream: FileDescriptorStream
            do { stream = try TCP.connect(address, deadline: .after(seconds: 60)) } catch { throw DeviceSync.Failure.link(LinkError(.connect, error)) }
            reached(.tcpConnected)
            defer {
                stream.close()
                reached(.hungUp)
            }
            return try body(stream, address)
        case .modem(let modem):
            let (host, port) = try SessionRequest.address(address)
            let device = try modem.open()
            defer {
                device.close()
                reached(.hungUp)
            }
            try device.requireReadySIM()
            _ = try device.waitForRegistration()
            reached(.modemRegistered)
            // One AT+CSQ while the modem is still in command mode, for status to show later.
            recordSignal(try? device.signal())
            let opened = try device.openStream(SessionRequest(apn: modem.apn, user: modem.user, password: modem.password, host: host, port: port),
                                               pppd: modem.pppd, optionsParent: configuration.home,
                                               pppTimeout: modem.pppTimeout, reached: { reached($0) })
            defer { opened.close() }
            return try body(opened.stream, address)
        }
    }
}
