import Agent
import ArgumentParser
import Field
import Modem
import Seal

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take a handheld to one the hub knows: register it with a technician's credential, pin the hub, write the sealed device configuration.",
        discussion: """
            With --technician-credential (ID.SECRET as `satchel-hub technician add` printed it; `-` reads it from standard input) \
            the hub is asked first: it checks the credential, registers the device (a bare handheld needs --device and --rep), \
            sends its role and offline policy signed, and takes the device's data key in escrow. Only then is anything written here: \
            the database and key of a bare handheld, the hub pin, the assignment, and device.conf with its seal (device.conf.seal). \
            A refusal writes nothing. A provisioned handheld is refused (exit 73) unless --replace (same identity, new settings). \
            The hardware options go into device.conf: --card, --board, --modem (a modem profile), --modem-port, --battery, --apn.
            """)
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "HOST:PORT of the hub (over the operator's private APN).") var hub: String
    @Option(help: "The hub's public key, 64 hex digits (`satchel-hub key`).") var hubKey: String
    @Option(help: "A bare handheld's new device id.") var device: String?
    @Option(help: "The rep who carries it (a bare handheld).") var rep: String?
    @Option(help: "The technician's credential, ID.SECRET; `-` reads it from standard input.") var technicianCredential: String?
    @Option(help: "The device this handheld replaces: retired at the hub; this one may upload its card and duplicate its state.") var replaces: String?
    @Flag(help: "Provision an already provisioned handheld again (same identity): new settings, the assignment and the escrow again.") var replace = false
    @Option(help: "Board profile (a name in hardware/boards).") var board: String?
    @Option(name: [.customLong("modem"), .customLong("modem-profile")], help: "Modem profile, when not the board's (a name in hardware/modems).") var modemProfile: String?
    @Option(help: "The modem's serial port, when not the board's.") var modemPort: String?
    @Option(help: "The battery's sysfs power_supply directory, when not the board's.") var battery: String?
    @Option(help: "The operator's access point name for sync over the modem.") var apn: String?

    func run() throws {
        try syncErrors {
            let agent = try home.agent()
            var settings = agent.configuration.settings
            let given: [(String, String?)] = [("card", home.card.map(DeviceSettings.absolute)), ("board", board), ("modem_profile", modemProfile),
                                              ("modem_port", modemPort.map(DeviceSettings.absolute)), ("battery", battery.map(DeviceSettings.absolute)), ("apn", apn)]
            for case let (key, value?) in given {
                try DeviceSettings.validate(key: key, value: value)
                settings[key] = value
            }
            // Profiles that cannot be found fail now, before anything is written or asked.
            if board != nil || modemProfile != nil {
                guard let directory = HardwareDirectory.locate(override: Environment.value("SATCHEL_HARDWARE")) else {
                    throw ModemError.profile("no hardware directory to find \(board.map { "board \($0)" } ?? "modem \(modemProfile ?? "")") in (set SATCHEL_HARDWARE)")
                }
                if let board { _ = try directory.board(board) }
                if let modemProfile { _ = try directory.modem(modemProfile) }
            }
            let credential = try technicianCredential.map { $0 == "-" ? try readSecret("technician credential") : $0 }
            let report = try agent.provision(ProvisionRequest(hub: hub, hubKey: hubKey, device: device, rep: rep, credential: credential,
                                                              replaces: replaces, replace: replace, settings: settings))
            if output.json { return try printJSON(report) }
            if report.initialised { print("Initialised device \(report.device) for rep \(report.rep)") }
            if report.registered {
                print("Registered device \(report.device) (rep \(report.rep), role \(report.role ?? "rep")) at hub \(hub)\(report.replaces.map { ", replacing \($0) (retired)" } ?? "")")
                let lock = report.lockAfterDays ?? 0, wipe = report.wipeAfterDays ?? 0
                print(lock == 0 ? "Offline policy: none (satchel-hub device policy sets one)"
                      : "Offline policy: locks after \(lock) days without a sync\(wipe > 0 ? ", wipes after \(wipe)" : "")")
                print(report.escrowedKeyCheck.map { "Data key escrowed at the hub (key check \($0))" }
                      ?? "No data key to escrow yet: run `satchel card init` and then `satchel provision --replace ...` to escrow it")
            } else {
                print("Pinned hub \(hub); this device's public key: \(report.publicKey)")
                print("Register it on the hub: satchel-hub device add --device \(report.device) --rep \(report.rep) --key \(report.publicKey)")
            }
            if let problem = report.cardProblem { printNotice("WARNING: the identity is not on the card yet (\(problem)); the next backup puts it there") }
            for case let (key, value?) in given { print("Configured \(key) = \(value)") }
        }
    }
}
