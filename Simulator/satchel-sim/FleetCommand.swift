import ArgumentParser
import Field
import Foundation
import ModemSimulator
import Seal
import SimulatorKit

/// `satchel-sim fleet` (issue 15): the command parses, `Fleet.run` does the work.
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "N simulated handhelds, each a day's full sync over the real protocol, against real satchel-hub serve processes on one storage; lost and duplicates checked against the hub's storage.",
        discussion: "Exits 1 when any acknowledged document is missing from the hub, any is held twice, or any device did not finish its sync.")
    @Option(help: "Simulated devices.") var devices: Int = 20
    @Option(help: ArgumentHelp("Where the hubs listen, one satchel-hub serve per address (port 0 picks one).", valueName: "host:port[,host:port...]"))
    var hub: String = "127.0.0.1:0"
    @Option(help: "The devices' link: gprs, edge, umts or none (loopback, unshaped).") var link: String = "none"
    @Option(name: .customLong("window-s"), help: "Seconds over which the devices' syncs start.") var windowSeconds: Double = 10
    @Option(name: .customLong("kill-hub-after"), help: "Seconds into the window when the first hub process is killed (SIGKILL); needs two hubs or more.")
    var killHubAfter: Double?
    @Option(help: ArgumentHelp("PostgreSQL instead of SQLite: a URL whose role may create databases (the run makes its own and drops it).", valueName: "url"))
    var postgres: String?
    @Option(help: "Each hub's --sessions cap (satchel-hub serve's default).") var sessions: Int = 2048
    @Option(help: "Each hub's --retry-after (seconds a refused device waits).") var retryAfter: Int = 5
    @Option(help: "Customers in each rep's scope.") var customersPerDevice: Int = 30
    @Option(help: "Customers of the territory the reps share out.") var customers: Int = 600
    @Option(help: "Products in the catalogue.") var products: Int = 300
    @Option(help: "Argon2id cost of the reps' sync passwords: interactive (what satchel-hub rep add stores) or handheld.") var passwordCost: String = "interactive"
    @Option(help: "Devices running their morning init at once (before the window, not measured).") var setupConcurrency: Int = 16
    @Option(help: "The first N devices also keep a real device database (the agent's DeviceDownload), compared with their light working set at every DONE.")
    var checkedDevices: Int = 1
    @Option(help: "Write the acknowledged document ids here, device<TAB>document a line.") var acknowledgedOut: String?
    @Option(help: "Keep the run's files (hub database, hub logs) in this directory.") var workDirectory: String?
    @Option(help: "satchel-hub to run (default: beside satchel-sim).") var hubBinary: String?
    @Option(help: "Seed.") var seed: UInt64 = 15
    @Flag(help: "One line of JSON.") var json = false

    func run() throws {
        guard devices >= 1 else { throw ValidationError("--devices \(devices): at least 1") }
        let addresses = hub.split(separator: ",").map(String.init)
        guard !addresses.isEmpty else { throw ValidationError("--hub: at least one host:port") }
        guard windowSeconds >= 0 else { throw ValidationError("--window-s \(windowSeconds): 0 or more") }
        if killHubAfter != nil, addresses.count < 2 { throw ValidationError("--kill-hub-after needs two hubs or more in --hub") }
        let hub = ChildProcess.sibling("satchel-hub", override: hubBinary)
        // Checked before anything is provisioned: a missing binary otherwise surfaces as the
        // launcher's raw error, after the fleet's databases were already written.
        guard access(hub, X_OK) == 0 else {
            throw ValidationError("--hub-binary \(TerminalText.safe(hub)): no executable satchel-hub there; build it (swift build) or name one with --hub-binary")
        }
        var options = Fleet.Options(devices: devices, hubBinary: hub)
        options.hubs = addresses
        switch link {
        case "none": options.link = nil
        default:
            guard let profile = LinkProfile.named(link) else { throw ValidationError("--link \(link): gprs, edge, umts or none") }
            options.link = profile
        }
        switch passwordCost {
        case "interactive": options.passwordCost = .interactive
        case "handheld": options.passwordCost = .handheld
        default: throw ValidationError("--password-cost \(passwordCost): interactive or handheld")
        }
        options.windowSeconds = windowSeconds
        options.killHubAfter = killHubAfter
        options.postgresAdmin = postgres
        options.hubSessions = sessions
        options.retryAfter = retryAfter
        options.customersPerDevice = customersPerDevice
        options.customerPool = customers
        options.products = products
        options.setupConcurrency = setupConcurrency
        guard checkedDevices >= 0 else { throw ValidationError("--checked-devices \(checkedDevices): 0 or more") }
        options.checkedDevices = checkedDevices
        options.acknowledgedOut = acknowledgedOut
        options.workDirectory = workDirectory
        options.seed = seed
        let report = try Fleet.run(options) { line in
            // Errors carry the hub's and the link's text: shown only made safe.
            FileHandle.standardError.write(Data(("fleet: " + TerminalText.safe(line) + "\n").utf8))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(TerminalText.escapingJSON(String(decoding: try encoder.encode(report), as: UTF8.self)))
        } else {
            print("devices \(report.devices), syncs ok \(report.syncsOK), failed \(report.failed), refused \(report.refused), lost \(report.lost), duplicates \(report.duplicates)")
            print(String(format: "%.1f syncs/s, p50 %.2f s, p99 %.2f s, max concurrent %d (hub %d), hub max RSS %.0f MB",
                         report.syncsPerSecond, report.p50Seconds, report.p99Seconds, report.maxConcurrent, report.hubMaxOpenSessions, report.hubMaxRSSMB))
            for error in report.firstErrors { print("error: " + TerminalText.safe(error)) }
        }
        if !report.passed { throw ExitCode(1) }
    }
}
