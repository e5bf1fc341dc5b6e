import Agent
import ArgumentParser
import Field

/// `satchel unlock`: the app password (standard input, never an argument) unlocks the device
/// until `satchel lock`, the idle lock (`idle_lock_minutes`) or a reboot.
struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unlock the device with the app password (read from standard input).",
        discussion: """
            Wrong passwords wait longer each time; after password_attempts of them in a row (device.conf, default 10)
            the keys are destroyed and the device needs a technician. Exit 77 locked or wrong password, 69 keys destroyed.
            When the handheld has a modem (modem_port, or its board's) and its SIM asks for the PIN, the PIN is asked next
            (the following line of standard input) and sent once, never with one attempt left or fewer; the SIM's answer
            is reported, and the device stays unlocked whatever it is.
            """)
    @OptionGroup var options: HomeOptions
    @Option(help: "Directory of the modem port's UUCP lock file.") var lockDir: String = "/var/lock"
    @Option(help: "Seconds for the whole modem probe.") var modemTimeout: Double = 15

    func validate() throws {
        guard modemTimeout > 0 && modemTimeout <= 120 else { throw ValidationError("--modem-timeout must be between 0 and 120 seconds") }
    }

    func run() throws {
        try reportingErrors {
            let agent = try options.agent()
            try agent.unlock(password: try readSecret("app password"))
            print("unlocked")
            var modem = DoctorModemOptions()
            modem.lockDirectory = lockDir.isEmpty ? nil : lockDir
            modem.probeTimeout = modemTimeout
            modem.hardware = Environment.value("SATCHEL_HARDWARE")
            let sim = agent.unlockSIM(modem: modem) { readSecretInput(prompt: "SIM PIN: ") }
            switch sim {
            case .noModem: break
            case .ready, .unlocked: print(TerminalText.safe(sim.message))
            case .notGiven, .problem: printNotice(sim.message)
            }
        }
    }
}

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lock the device: the next command asks for the app password again.")
    @OptionGroup var options: HomeOptions

    func run() throws {
        try reportingErrors {
            try options.agent().lock()
            print("locked")
        }
    }
}

struct PasswordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "password",
        abstract: "Set or change the app password, which encrypts everything the device keeps.",
        subcommands: [Set.self, Change.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the first app password (read twice from standard input); encrypts an existing database.")
        @OptionGroup var options: HomeOptions

        func run() throws {
            try reportingErrors {
                let password = try readSecret("new app password")
                guard try readSecret("new app password again") == password else {
                    throw FieldError.invalidInput(what: "app password", value: "...", reason: "the two entries differ; nothing was changed")
                }
                try options.agent().setPassword(password)
                print("app password set; the device is unlocked")
            }
        }
    }

    struct Change: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change the app password (current, then the new one twice, on standard input).")
        @OptionGroup var options: HomeOptions

        func run() throws {
            try reportingErrors {
                let current = try readSecret("current app password")
                let password = try readSecret("new app password")
                guard try readSecret("new app password again") == password else {
                    throw FieldError.invalidInput(what: "app password", value: "...", reason: "the two entries differ; nothing was changed")
                }
                try options.agent().changePassword(current: current, new: password)
                print("app password changed")
            }
        }
    }
}
