import Agent

/// What `satchel init` does beyond the database, for devices the simulator makes itself.
public enum SimulatedDevice {
    /// The device's sync key, made as `satchel init` makes it (a command that only reads never does).
    public static func makeKey(home: String) throws {
        try DeviceSync(DeviceAgent(AgentConfiguration(home: home))).makeKeyPair()
    }
}
