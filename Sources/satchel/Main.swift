import ArgumentParser
@main struct Sim: ParsableCommand { func run() {} }
