import ArgumentParser
import Console

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The whole visit on the handheld's screen: route, customer, order, payment, status.",
        discussion: "Keys: digits, arrows, Enter, Esc (F1-F4 too). Fits 32x16; uses a larger screen. Every save is the same as the commands'.")
    @OptionGroup var home: HomeOptions

    func run() throws {
        try reportingErrors {
            do {
                try Console.run(agent: try home.agent(), options: .init(statisticsPath: Environment.value("SATCHEL_CONSOLE_STATS")))
            } catch let error as ConsoleError {
                printError(error.description)
                throw ExitCode(66)
            }
        }
    }
}
