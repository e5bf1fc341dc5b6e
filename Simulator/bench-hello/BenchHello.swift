import ArgumentParser

/// The smallest program built like `satchel` (argument parser, static stdlib): the baseline
/// `satchel-sim bench capture` compares binary size and memory against.
@main
struct BenchHello: ParsableCommand {
    @Option(help: "Who to greet.") var name = "world"
    func run() { print("hello, \(name)") }
}
