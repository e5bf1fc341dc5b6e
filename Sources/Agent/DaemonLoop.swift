import Field
import Backup
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One check of the background loop, separate from the waiting so tests can drive it tick by
/// tick: catch the card up, react to the battery, take a scheduled snapshot when due.
public struct DaemonLoop {
    let agent: DeviceAgent
    let snapshotIntervalMilliseconds: Int64
    let log: (String) -> Void
    var lastSnapshotAt: Int64 = 0
    var snapshotTakenAtLowBattery = false
    var checkedForDamage = false

    public init(agent: DeviceAgent, snapshotInterval milliseconds: Int64, log: @escaping (String) -> Void) {
        self.agent = agent
        self.snapshotIntervalMilliseconds = milliseconds
        self.log = log
    }

    public mutating func tick() {
        let device: DeviceDatabase
        do { device = try agent.open(notice: log) } catch {
            log("cannot open the device database: \(error)")
            return
        }
        if !checkedForDamage {
            // Once per start: a quick_check reads every page, too slow for every command.
            do { try device.checkForDamage() } catch {
                log("the device database is damaged, writes are refused: \(error)")
                return
            }
            checkedForDamage = true
        }
        let card = agent.mirror(device)
        if card.state != .notConfigured && !card.isHealthy { log("card: \(card.state.rawValue) \(card.message ?? "")") }
        let now = device.clock.nowMilliseconds()
        if let battery = agent.readBattery() {
            switch battery.level {
            case .critical:
                if agent.writesStoppedReason() == nil {
                    // Finish what is in flight (each capture is its own transaction), get the card
                    // as current as it can be, fold the WAL into the database, then stop writing.
                    if (try? agent.snapshot(device)) != nil { lastSnapshotAt = now }
                    try? device.database.checkpoint()
                    try? agent.stopWrites(reason: "battery critical (\(battery.percent)%)")
                    log("battery critical (\(battery.percent)%): card up to date, writes stopped")
                }
                return
            case .low:
                if !snapshotTakenAtLowBattery, (try? agent.snapshot(device)) != nil {
                    snapshotTakenAtLowBattery = true
                    lastSnapshotAt = now
                    log("battery low (\(battery.percent)%): snapshot taken")
                }
            case .normal:
                snapshotTakenAtLowBattery = false
            }
            if agent.writesStoppedReason() != nil {
                agent.resumeWrites()
                log("battery \(battery.percent)%\(battery.charging ? ", charging" : ""): writes resumed")
            }
        }
        if card.state == .ok, now - lastSnapshotAt >= snapshotIntervalMilliseconds,
           let last = try? device.lastChangeSeq(), last > (card.snapshotCoversSeq ?? 0) {
            if let pointer = try? agent.snapshot(device) {
                lastSnapshotAt = now
                log("scheduled snapshot #\(pointer.generation) covers change \(pointer.coversSequence)")
            }
        }
    }

    /// Runs the loop under the init system: a tick every `intervalSeconds` (at most `ticks` of
    /// them; 0: until signalled). SIGTERM, SIGPWR and SIGINT are blocked and waited for between
    /// ticks with `sigtimedwait`, so a signal never lands in the middle of a card write: the loop
    /// then shuts down (a last snapshot) and returns the signal's name. Under systemd
    /// (`notifier`), `READY=1` follows the first check and `WATCHDOG=1` every check, and the
    /// wait between checks is cut to half the watchdog interval so a turning loop is never
    /// taken for a hung one.
    @discardableResult
    public mutating func run(intervalSeconds: Int, ticks: Int = 0, notifier: SystemdNotifier? = nil) -> String? {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGPWR, SIGINT] { sigaddset(&signals, signal) }
        sigprocmask(SIG_BLOCK, &signals, nil)
        let wait = notifier?.checkInterval(requested: max(1, intervalSeconds)) ?? max(1, intervalSeconds)
        var tick = 0
        while ticks == 0 || tick < ticks {
            self.tick()
            if let notifier {
                notifier.send(tick == 0 ? "READY=1\nWATCHDOG=1\nSTATUS=checking the card every \(wait) s" : "WATCHDOG=1")
            }
            tick += 1
            if ticks != 0 && tick >= ticks { break }
            var timeout = timespec(tv_sec: wait, tv_nsec: 0)
            let received = sigtimedwait(&signals, nil, &timeout)
            if received > 0 {
                let name = received == SIGPWR ? "SIGPWR" : received == SIGTERM ? "SIGTERM" : "SIGINT"
                notifier?.send("STOPPING=1\nSTATUS=\(name): last snapshot")
                shutdown(signal: name)
                return name
            }
        }
        return nil
    }

    /// On SIGTERM or SIGPWR: the card as current as it can be, the WAL checkpointed.
    public mutating func shutdown(signal: String) {
        guard let device = try? agent.open() else { return }
        let pointer = try? agent.snapshot(device)
        try? device.database.checkpoint()
        log("\(signal): \(pointer.map { "snapshot #\($0.generation) taken" } ?? "no snapshot (card unavailable)"), stopping")
    }
}
