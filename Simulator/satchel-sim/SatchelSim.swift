import ArgumentParser
import Field
import Foundation
import SimulatorKit
import Modem

@main
struct SatchelSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "satchel-sim",
        abstract: "Simulator harness: seeds handhelds, runs a rep's day through the real satchel, benchmarks.",
        subcommands: [Seed.self, Day.self, DaysCommand.self, Bench.self, SyncFuzzCommand.self, PowerCut.self, ModemSim.self, ModemChaos.self, FleetCommand.self])
}

struct Seed: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a device in --home with a generated working set.")
    @Option(help: "Data directory of the simulated device.") var home: String
    @Option(help: "Customers in the working set.") var customers: Int = 2_000
    @Option(help: "Products in the catalogue.") var products: Int = 3_000
    @Option(help: "Seed: the same seed gives the same working set.") var seed: UInt64 = 1
    @Option(help: "Device id, if the home is new.") var device: String = "SIM1"
    @Option(help: "History orders per customer (at most).") var history: Int = 6
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        guard customers >= 1, customers <= 200_000, products >= 1, products <= 200_000 else {
            throw ValidationError("--customers and --products must be between 1 and 200000")
        }
    }

    func run() throws {
        let database: DeviceDatabase
        do {
            database = try DeviceDatabase.open(home: home)
        } catch FieldError.notInitialised {
            database = try DeviceDatabase.create(home: home, deviceID: device, repID: "R01")
            try SimulatedDevice.makeKey(home: home)
        }
        let today = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())
        let summary = try Seeder.seed(database, plan: .init(customers: customers, products: products, seed: seed,
                                                            historyOrdersPerCustomer: history, today: today))
        if json {
            print(try FieldJSON.encode(summary))
        } else {
            print("Seeded \(home): \(summary.customers) customers, \(summary.products) products, \(summary.prices) prices, \(summary.stockRows) stock rows, \(summary.historyOrders) history orders, route of \(summary.routeStops) stops for \(today)")
        }
    }
}

struct Day: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a rep's day on a simulated handheld through the real satchel executable, then check nothing acknowledged was lost.")
    @Option(help: "Seed: the same seed replays the same day.") var seed: UInt64 = 1
    @Option(help: "Keep the device's files (device/, card/) in this directory.") var keep: String?
    @Option(help: "Path of the satchel executable (default: next to satchel-sim, or $SATCHEL_BIN).") var satchel: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        let path = ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"])
        let report: DayRunner.Report
        do {
            report = try DayRunner.run(.init(seed: seed, keep: keep, satchelPath: path, hardware: hardwareDirectory(nil).path))
        } catch {
            FileHandle.standardError.write(Data("satchel-sim: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if keep == nil { try? FileManager.default.removeItem(atPath: (report.home as NSString).deletingLastPathComponent) }
        if json {
            print(try FieldJSON.encode(report))
        } else {
            print("""
                A rep's day (seed \(report.seed)) through the real satchel, \(report.commands) commands in \(String(format: "%.1f", report.elapsedSeconds)) s
                  route:             \(report.routeStops) stops, \(report.customerChecks) customer checks, \(report.visits) visits
                  orders:            \(report.ordersConfirmed) confirmed (\(report.ordersHeldForApproval) held for approval), \(report.orderLines) lines, \(report.draftsCompletedLater) finished from a draft
                  payments:          \(report.payments)
                  display requests:  \(report.displayRequests)
                  complaints:        \(report.complaints)
                  bad input refused: \(report.badInputsRefused) (nothing written)
                  acknowledged:      \(report.acknowledged), lost: \(report.lost), integrity: \(report.integrityOK ? "ok" : "FAILED")
                  card:              \(report.cardState), journal through change \(report.cardJournalThroughSeq), \(report.cardBehind) behind; end-of-day snapshot #\(report.snapshotGeneration) covers change \(report.snapshotCoversSeq)
                  morning init:      \(report.initRows) working-set rows, \(report.initBytesDown) bytes down (simulated modem, EDGE)
                  evening sync:      \(report.syncUploaded) changes up, \(report.syncDownloaded) rows down, \(report.syncBytesUp) bytes up / \(report.syncBytesDown) down (simulated modem, GPRS); the hub holds \(report.hubChanges)
                  office answers:    \(report.ordersAcceptedByOffice) orders accepted, \(report.ordersShownAccepted) shown accepted on the device
                """)
            if let keep { print("  files kept in:     \(keep) (device/satchel.db, card/satchel/<device>/, hub/hub.db)") }
            for problem in report.problems { print("  PROBLEM: \(problem)") }
        }
        if report.lost > 0 || !report.integrityOK || !report.problems.isEmpty { throw ExitCode(1) }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks, measured as ratios side by side in one run.",
                                                    subcommands: [CaptureBenchCommand.self, BackupBenchCommand.self, SyncBenchCommand.self, SyncGPRSBench.self, ERPBenchCommand.self, HubIngestBenchCommand.self, EncryptionBenchCommand.self,
                                                                  HubPlanBenchCommand.self])
}
