public import SystemCalls
public import Transport

/// An open data session (after `CONNECT`): a `ByteStream`, so sync uses it without knowing it
/// is a modem. Closing leaves data mode (guard time, `+++`, guard time) and hangs up.
public final class DataSession: ByteStream {
    public let modem: Modem
    public private(set) var carrierLost = false
    public private(set) var isClosed = false
    public private(set) var bytesIn = 0
    public private(set) var bytesOut = 0
    private var scanner: CarrierMarkerScanner
    /// Bytes the scanner released beyond what the last read asked for (held-back bytes come
    /// back together with the next chunk): handed out first by the next read.
    private var surplus: [UInt8] = []
    /// How long bytes that might begin the end-of-session line wait for the rest of it: the
    /// modem sends that line in one go, so anything longer means they were data.
    static let holdSeconds = 0.2

    init(modem: Modem) {
        self.modem = modem
        scanner = CarrierMarkerScanner(markers: modem.profile.carrierLost)
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
        guard !isClosed else { throw StreamError.closed(what: "modem data session closed") }
        guard !carrierLost else { throw StreamError.closed(what: "modem lost the carrier") }
        try modem.channel.port.write(bytes, deadline: deadline)
        bytesOut += bytes.count
    }

    public func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        guard !isClosed else { throw StreamError.closed(what: "modem data session closed") }
        let wanted = max(1, maxCount)
        if !surplus.isEmpty {
            let bytes = Array(surplus.prefix(wanted))
            surplus.removeFirst(bytes.count)
            return bytes
        }
        let data = try readReleased(maxCount: wanted, deadline: deadline)
        guard data.count > wanted else { return data }
        surplus = Array(data[wanted...])
        return Array(data[..<wanted])
    }

    /// What the scanner releases: possibly more than `maxCount`, when bytes held back from
    /// the previous chunk come out together with this one.
    private func readReleased(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        if carrierLost { return [] }
        if let carrier = modem.serial?.carrierDetect(), !carrier {
            lost()
            return []
        }
        while true {
            let wait = scanner.isHolding ? Swift.min(deadline, Deadline.after(seconds: Self.holdSeconds)) : deadline
            let chunk: [UInt8]
            do {
                chunk = try modem.channel.dataRead(maxCount: max(1, maxCount), deadline: wait)
            } catch StreamError.timedOut(let what) {
                guard scanner.isHolding else { throw StreamError.timedOut(what: what) }
                let data = scanner.flush()
                bytesIn += data.count
                return data
            }
            if chunk.isEmpty {
                lost()
                let data = scanner.flush()
                bytesIn += data.count
                return data
            }
            switch scanner.feed(chunk) {
            case .ended(let before):
                lost()
                bytesIn += before.count
                return before
            case .data(let data) where !data.isEmpty:
                bytesIn += data.count
                return data
            case .data:
                continue  // all of it might be the start of the end-of-session line: read on
            }
        }
    }

    private func lost() {
        carrierLost = true
        modem.channel.leaveDataMode()
    }

    /// Leaves data mode and runs the profile's `close` script. False when the modem did not
    /// confirm (the next command re-syncs, and the recovery ladder takes it from there).
    ///
    /// The guard time before `+++` is silence from our side, not a sleep: it is spent reading, so
    /// a far end that closes meanwhile (SIMCom's `CLOSED`, `NO CARRIER`) is seen at once and no
    /// escape is sent to a modem already back in command mode, where `+++` would sit on its
    /// command line and swallow the close script's first command until that command's timeout
    /// (10 s for `AT+CIPCLOSE`: the bench's init over EDGE lost them there). The silence counts
    /// from here, not from our last write: write(2) returning does not mean the bytes have left
    /// the UART, and the modem times the silence from the last byte it received. After `+++`
    /// the modem's own answer ends the wait (it comes once its guard time has passed), within a
    /// deadline.
    @discardableResult
    public func hangUp() -> Bool {
        guard !isClosed else { return true }
        var confirmed = true
        if !carrierLost {
            let guardTime = modem.guardSeconds
            awaitCarrierLoss(until: .after(seconds: guardTime))
        }
        isClosed = true
        if !carrierLost {
            let guardTime = modem.guardSeconds
            do {
                try modem.channel.port.write(Array("+++".utf8), deadline: .after(seconds: 1))
            } catch {
                confirmed = false
            }
            modem.channel.leaveDataMode()
            let answer = confirmed ? awaitEscape(deadline: .after(seconds: guardTime + max(1, modem.config.commandTimeout))) : nil
            confirmed = answer != nil
            if answer != .escaped {
                // No answer, or the far end closed while `+++` was on its way: the modem may hold
                // those bytes on its command line. End that line, and sync before the next command.
                if answer != nil { try? modem.channel.port.write(Array("\r".utf8), deadline: .after(seconds: 1)) }
                modem.channel.needsResync = true
            }
        }
        for step in modem.profile.closeScript {
            _ = try? modem.channel.send(step.command([:]), timeout: step.timeout * modem.config.scriptTimeoutScale, expect: step.expect)
        }
        return confirmed
    }

    /// Reads the data stream until `deadline` or until the modem reports the end of the session
    /// (then `carrierLost` is set); data still arriving is discarded, the session is ending.
    private func awaitCarrierLoss(until deadline: Deadline) {
        while !carrierLost {
            do {
                _ = try readReleased(maxCount: 4096, deadline: deadline)
            } catch {
                return  // the deadline passed (or the port failed: the escape finds out)
            }
            if deadline.hasPassed { return }
        }
    }

    enum EscapeAnswer { case escaped, farEndClosed }

    /// Reads until `OK` (escaped) or `NO CARRIER`/`CLOSED` (the far end closed); data still in
    /// flight is discarded. Nil when the deadline passes first.
    private func awaitEscape(deadline: Deadline) -> EscapeAnswer? {
        var splitter = LineSplitter(maxLineBytes: 256)
        while !deadline.hasPassed {
            guard let chunk = try? modem.channel.dataRead(maxCount: 512, deadline: deadline), !chunk.isEmpty else { return nil }
            for byte in chunk {
                guard let line = splitter.push(byte) else { continue }
                if let final = FinalResult.parse(line) {
                    if final == .ok { return .escaped }
                    if final == .noCarrier { return .farEndClosed }
                }
                if line == "CLOSED" { return .farEndClosed }
            }
        }
        return nil
    }

    public func close() { hangUp() }

    public var endCause: Errno? { modem.channel.port.endCause }
}
