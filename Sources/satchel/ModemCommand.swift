import ArgumentParser

struct ModemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "modem", abstract: "Talk to the GSM modem (being written, issue 5).")
}
