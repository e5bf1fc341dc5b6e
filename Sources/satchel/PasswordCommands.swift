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
            """)
    @OptionGroup var options: HomeOptions

    func run() throws {
        try reportingErrors {
            let agent = try options.agent()
            try agent.unlock(password: try readSecret("app password"))
            print("unlocked")
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
