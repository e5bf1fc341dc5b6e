// The Modem module: serial port, AT channel, SIM PIN safety, registration, data sessions.
// (Being written; see issue 5.)
public enum ModemModule {}
