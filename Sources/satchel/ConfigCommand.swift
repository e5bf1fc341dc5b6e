import Agent
import ArgumentParser

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "The device configuration in the data directory (device.conf): card, board, modem, battery.",
        subcommands: [Show.self, Set.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What the device is configured with, and what this command would use; changes nothing.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var file: String
            var settings: [String: String]
            var card: String?
            var cardMustBeMounted: Bool
            var battery: String?
            enum CodingKeys: String, CodingKey {
                case file, settings, card, battery
                case cardMustBeMounted = "card_must_be_mounted"
            }
        }

        func run() throws {
            try reportingErrors {
                let configuration = try home.agent().configuration
                let report = Report(file: DeviceSettings.path(home: configuration.home), settings: configuration.settings.values,
                                    card: configuration.cardRoot, cardMustBeMounted: configuration.cardMustBeMounted,
                                    battery: configuration.batteryDirectory)
                if output.json { return try printJSON(report) }
                print("\(report.file):")
                for key in DeviceSettings.keys {
                    print("  \(key.name) = \(configuration.settings[key.name] ?? "(not set)")    # \(key.help)")
                }
                print("In use: card \(report.card ?? "none")\(report.cardMustBeMounted ? " (must be mounted)" : ""), battery \(report.battery ?? "none")")
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set one key of the device configuration (the file is rewritten whole, durably).")
        @OptionGroup var home: HomeOptions
        @Argument(help: "card, card_must_be_mounted, board, modem_profile, modem_port or battery.") var key: String
        @Argument(help: "The value.") var value: String

        func run() throws {
            try reportingErrors {
                let value = ["card", "battery", "modem_port"].contains(key) ? DeviceSettings.absolute(self.value) : self.value
                try DeviceSettings.validate(key: key, value: value)
                let configuration = try home.agent().configuration
                var settings = configuration.settings
                settings[key] = value
                try settings.write(home: configuration.home)
                print("\(key) = \(value) (\(DeviceSettings.path(home: configuration.home)))")
            }
        }
    }
}
