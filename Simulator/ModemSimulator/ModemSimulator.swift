// The simulated modem on a pty. (Being written; see issue 5.)
public enum ModemSimulatorModule {}
