import Agent
import ArgumentParser
import Console
import Modem

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The whole visit on the handheld's screen: route, customer, order, payment, status, sync.",
        discussion: "Keys: digits, arrows, Enter, Esc (F1-F4 too). Fits 32x16; uses a larger screen. Every save is the same as the commands'; the sync page syncs as `satchel sync` does, over the network or, when this handheld has a modem configured (modem_port), the modem. With an app password it starts locked; after the password, when the SIM asks for its PIN, the PIN is asked as `satchel unlock` asks it (never at one attempt left or fewer; Esc skips it).")
    @OptionGroup var home: HomeOptions
    @Option(help: "Access point name for a sync over the modem.") var apn: String = "internet"
    @OptionGroup(title: "Modem (for a sync over the modem)") var modem: ModemOptions

    func run() throws {
        try reportingErrors {
            do {
                let agent = try home.agent()
                // With an app password the console starts on the unlock page while the device is locked.
                let lock = agent.deviceLock.state == .noPassword ? nil
                    : ConsoleLock(isLocked: { agent.deviceLock.state == .locked }, unlock: { try agent.unlock(password: $0) },
                                  delayAfterNextFailureMilliseconds: { agent.deviceLock.delayAfterNextFailureMilliseconds },
                                  touch: { _ = try? agent.deviceLock.unlockedKey() },
                                  unlockSIM: { pin in agent.unlockSIM(modem: simOptions) { pin } })
                try Console.run(agent: agent, options: .init(statisticsPath: Environment.value("SATCHEL_CONSOLE_STATS"), syncLinks: links(agent), lock: lock))
            } catch let error as ConsoleError {
                printError(error.description)
                throw ExitCode(66)
            }
        }
    }

    /// The SIM PIN at unlock asks the modem as `satchel unlock` does, with this command's lock
    /// directory and hardware directory.
    var simOptions: DoctorModemOptions {
        var options = DoctorModemOptions()
        options.lockDirectory = modem.lockDir.isEmpty ? nil : modem.lockDir
        options.hardware = modem.hardware ?? Environment.value("SATCHEL_HARDWARE")
        return options
    }

    /// The network always; the modem when it is configured for this handheld or given here.
    func links(_ agent: DeviceAgent) -> [(name: String, link: SyncLink)] {
        var links: [(name: String, link: SyncLink)] = [("network", .network)]
        var modem = self.modem
        let settings = agent.configuration.settings
        modem.port = modem.port ?? settings.modemPort
        modem.profile = modem.profile ?? settings.modemProfile
        modem.board = modem.board ?? settings.board
        if modem.port != nil || modem.board != nil {
            links.append(("modem", .modem(ModemLink(open: { () throws(ModemError) in try modem.open().0 }, apn: apn, pppd: modem.pppd, pppTimeout: modem.pppTimeout))))
        }
        return links
    }
}
