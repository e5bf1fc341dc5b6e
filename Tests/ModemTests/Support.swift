import Foundation
import Modem
import ModemSimulator
import SatchelTesting
import Testing
import Transport

/// The repository's hardware/ directory.
let repositoryHardware: HardwareDirectory = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()
    url.deleteLastPathComponent()
    return HardwareDirectory(path: url.deletingLastPathComponent().appendingPathComponent("hardware").path)
}()

/// A simulated modem on its own thread, stopped when the value goes away.
final class RunningSimulator {
    let modem: SimulatedModem
    init(_ adjust: (inout SimulatedModemConfig) -> Void = { _ in }) throws {
        var config = SimulatedModemConfig()
        config.timeScale = 0.01
        config.guardSeconds = 0.03
        adjust(&config)
        modem = try SimulatedModem(config: config)
        modem.start()
    }
    var path: String { modem.path }
    deinit { modem.stop() }
}

/// Agent settings shrunk to the simulator's scaled time.
func fastConfig() -> ModemConfig {
    var config = ModemConfig()
    config.commandTimeout = 0.5
    config.simBusyTimeout = 1
    config.simBusyPoll = 0.05
    config.registrationTimeout = 2
    config.registrationPoll = 0.2
    config.scriptTimeoutScale = 0.02
    config.guardSeconds = 0.03
    return config
}

func openModem(_ simulator: RunningSimulator, profile: String? = nil, config: ModemConfig = fastConfig(),
               lockDirectory: String? = nil) throws -> Modem {
    let chosen = try profile.map { try repositoryHardware.modem($0) } ?? ModemProfile.builtInGeneric
    return try Modem.open(port: simulator.path, profile: chosen, config: config, lockDirectory: lockDirectory)
}
