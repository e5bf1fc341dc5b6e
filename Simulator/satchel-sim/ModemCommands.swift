import ArgumentParser

struct ModemSim: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "modem", abstract: "A simulated modem on a pty (being written, issue 5).")
}

struct ModemChaos: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "modem-chaos", abstract: "Chaos sessions against faulty simulated modems (being written, issue 5).")
}
