import Foundation
public import Transport

/// The sync server's counters since it started, in the Prometheus text exposition format
/// (version 0.0.4) for `satchel-hub serve --metrics HOST:PORT` (docs/operations.md).
/// Counters only grow; `sessions_open` is a gauge. Thread-safe: every session thread counts.
public final class HubMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0
    private var started = 0
    private var accepted = 0
    private var refused = 0
    private var bytesUp = 0
    private var bytesDown = 0
    private var recordsUp = 0
    private var recordsDown = 0
    private var results: [String: Int] = [:]
    private var cut = 0
    private var batches = 0
    private var errors = 0
    private var durationSum = 0.0
    private var durationCount = 0
    /// Upper bounds (seconds) of the session-duration histogram: a fast sync on a good link, a
    /// GPRS one, a slow initialisation, a session near its timeout.
    public static let durationBuckets: [Double] = [1, 5, 15, 60, 120, 300]
    private var durationBucketCounts = [Int](repeating: 0, count: durationBuckets.count)

    /// The password checks' gate and the verified-password memory the server uses, read at each
    /// scrape (nil: a server without them, or none set).
    private let passwords: PasswordGate?
    private let verifiedPasswords: VerifiedPasswords?

    public init(passwords: PasswordGate? = nil, verifiedPasswords: VerifiedPasswords? = nil) {
        self.passwords = passwords
        self.verifiedPasswords = verifiedPasswords
    }

    func accepted(admitted: Bool) {
        lock.lock(); defer { lock.unlock() }
        accepted += 1
        if !admitted { refused += 1 }
    }

    func sessionStarted() {
        lock.lock(); defer { lock.unlock() }
        open += 1
        started += 1
    }

    func batchCommitted() {
        lock.lock(); defer { lock.unlock() }
        batches += 1
    }

    /// A refusal that did not reach the device (its link failed during the handshake).
    func sessionFailed() {
        lock.lock(); defer { lock.unlock() }
        errors += 1
    }

    func sessionEnded(_ entry: AuditEntry, seconds: Double, cut wasCut: Bool) {
        lock.lock(); defer { lock.unlock() }
        open -= 1
        bytesUp += entry.bytesUp
        bytesDown += entry.bytesDown
        recordsUp += entry.recordsUp
        recordsDown += entry.recordsDown
        results[entry.result, default: 0] += 1
        if entry.result == "failed" { errors += 1 }
        if wasCut { cut += 1 }
        durationSum += seconds
        durationCount += 1
        for (index, bound) in Self.durationBuckets.enumerated() where seconds <= bound { durationBucketCounts[index] += 1 }
    }

    /// The text a Prometheus server scrapes.
    public func prometheusText() -> String {
        lock.lock(); defer { lock.unlock() }
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP satchel_hub_\(name) \(help)\n# TYPE satchel_hub_\(name) \(type)\n"
            for (labels, value) in samples { out += "satchel_hub_\(name)\(labels) \(value)\n" }
        }
        metric("sessions_open", "gauge", "Sync sessions under way now.", [("", "\(open)")])
        metric("connections_total", "counter", "Connections accepted on the sync port.", [("", "\(accepted)")])
        metric("sessions_total", "counter", "Sync sessions admitted, by how they ended (ok, refused, failed).",
               ["ok", "refused", "failed"].map { ("{result=\"\($0)\"}", "\(results[$0, default: 0])") })
        metric("refusals_total", "counter", "Connections refused because the session cap was reached (told to retry later).", [("", "\(refused)")])
        metric("sessions_cut_total", "counter", "Sessions cut at the drain deadline of a stop.", [("", "\(cut)")])
        metric("errors_total", "counter", "Sessions that failed (link, protocol or storage errors) and refusals that did not reach the device.", [("", "\(errors)")])
        metric("bytes_up_total", "counter", "Bytes received from devices, handshakes included.", [("", "\(bytesUp)")])
        metric("bytes_down_total", "counter", "Bytes sent to devices, handshakes included.", [("", "\(bytesDown)")])
        metric("batches_total", "counter", "Batches committed and answered with a RECEIPT (a batch sent again counts again).", [("", "\(batches)")])
        metric("records_up_total", "counter", "Change records received in batches.", [("", "\(recordsUp)")])
        metric("records_down_total", "counter", "Working-set rows and documents sent.", [("", "\(recordsDown)")])
        if let passwords {
            // Argon2id, 64 MiB each while it runs: the gate bounds them to `limit` at once.
            let counts = passwords.counts
            metric("password_checks_running", "gauge", "Argon2id password checks (sync passwords, provisioning credentials) running now.",
                   [("", "\(passwords.runningNow)")])
            metric("password_checks_limit", "gauge", "Argon2id password checks allowed at once (serve --password-memory-mb).", [("", "\(passwords.limit)")])
            metric("password_checks_total", "counter", "Argon2id password checks run to the end.", [("", "\(counts.verified)")])
            metric("password_check_timeouts_total", "counter", "Sessions told 'hub busy' because no password check came free before their deadline.",
                   [("", "\(counts.timedOut)")])
        }
        if let verifiedPasswords {
            metric("verified_password_hits_total", "counter", "Sessions let in by a password this process verified before, without Argon2id.",
                   [("", "\(verifiedPasswords.hitCount)")])
        }
        var buckets = Self.durationBuckets.enumerated().map { ("{le=\"\(SyncServer.seconds($0.element))\"}", "\(durationBucketCounts[$0.offset])") }
        buckets.append(("{le=\"+Inf\"}", "\(durationCount)"))
        out += "# HELP satchel_hub_session_duration_seconds Sync session durations, handshake to last message.\n"
        out += "# TYPE satchel_hub_session_duration_seconds histogram\n"
        for (labels, value) in buckets { out += "satchel_hub_session_duration_seconds_bucket\(labels) \(value)\n" }
        out += "satchel_hub_session_duration_seconds_sum \(String(format: "%.3f", durationSum))\n"
        out += "satchel_hub_session_duration_seconds_count \(durationCount)\n"
        return out
    }
}

/// The metrics over HTTP: `GET /metrics` answers `HubMetrics.prometheusText`, anything else 404.
/// One request per connection, answered on the serving thread (a scrape is a few hundred bytes),
/// each read and write with a deadline so a client that stalls cannot hold it long.
public enum MetricsEndpoint {
    public static func serve(_ listener: TCPListener, metrics: HubMetrics, shouldStop: @escaping @Sendable () -> Bool) {
        while !shouldStop() {
            guard let connection = try? listener.accept(deadline: .after(seconds: 1)) else { continue }
            answer(connection, metrics: metrics)
            connection.close()
        }
    }

    static func answer(_ connection: FileDescriptorStream, metrics: HubMetrics) {
        let deadline = Deadline.after(seconds: 5)
        var request: [UInt8] = []
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while request.count < 8192 {
            guard let chunk = try? connection.read(maxCount: 8192 - request.count, deadline: deadline), !chunk.isEmpty else { return }
            request += chunk
            if request.count >= 4, request.indices.dropLast(3).contains(where: { Array(request[$0..<$0 + 4]) == end }) { break }
        }
        let firstLine = String(decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = firstLine.split(separator: " ")
        let path = parts.count >= 2 ? parts[1].split(separator: "?").first.map(String.init) ?? "" : ""
        let (status, type, body): (String, String, String)
        if parts.first == "GET" && path == "/metrics" {
            (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.prometheusText())
        } else {
            (status, type, body) = ("404 Not Found", "text/plain; charset=utf-8", "satchel-hub: only GET /metrics is served here\n")
        }
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        try? connection.write(Array((head + body).utf8), deadline: deadline)
    }
}
