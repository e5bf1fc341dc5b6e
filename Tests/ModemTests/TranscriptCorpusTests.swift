import Foundation
import Modem
import ModemSimulator
import SatchelTesting
import Testing

/// hardware/modems/transcripts: what real modems answered (see its README.md).
let transcriptDirectory = repositoryHardware.path + "/modems/transcripts"

let corpusFiles: [String] = {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: transcriptDirectory)) ?? []
    return names.filter { $0.hasSuffix(".transcript") }.sorted()
}()

/// A transcript served on a pty, stopped when the value goes away.
final class RunningReplay {
    let modem: TranscriptModem
    init(_ file: String, _ adjust: (inout TranscriptReplayConfig) -> Void = { _ in }) throws {
        var config = TranscriptReplayConfig()
        adjust(&config)
        modem = try TranscriptModem(transcript: try ModemTranscript.load(path: transcriptDirectory + "/" + file), config: config)
        modem.start()
    }
    var transcript: ModemTranscript { modem.transcript }
    var path: String { modem.path }
    deinit { modem.stop() }
}

/// The agent's modem as `satchel modem` opens it: generic profile, the directory's vendor codes,
/// start, then the profile chosen from what the modem says.
func openReplayed(_ replay: RunningReplay, adjust: (inout ModemConfig) -> Void = { _ in }) throws -> Modem {
    var config = fastConfig()
    config.probeTimeout = 10
    adjust(&config)
    let modem = try Modem.open(port: replay.path, profile: try repositoryHardware.modem("generic"), config: config, lockDirectory: nil)
    modem.adoptVendorCodes(from: repositoryHardware)
    try modem.start()
    try modem.chooseProfile(in: repositoryHardware)
    return modem
}

@Suite("Real modems' transcripts: probe, unlock and registration with the real Modem module", .serialized)
struct TranscriptCorpusTests {
    @Test("the corpus holds at least 15 models of SIMCom, Quectel, Huawei, ZTE/Qualcomm, u-blox, Telit, Sierra and Wavecom, each citing its sources")
    func corpusCoverage() throws {
        #expect(corpusFiles.count >= 15, "\(corpusFiles)")
        var models = Set<String>()
        for file in corpusFiles {
            let transcript = try ModemTranscript.load(path: transcriptDirectory + "/" + file)
            #expect(!transcript.sources.isEmpty, "\(file) cites no source")
            #expect(transcript.expectProfile != nil && transcript.expectChoice != nil, "\(file) states no expectation")
            #expect(!transcript.model.isEmpty, "\(file)")
            models.insert(transcript.model)
        }
        #expect(models.count == corpusFiles.count)
        for vendor in ["simcom", "quectel", "huawei", "zte", "qualcomm", "ublox", "telit", "sierra", "wavecom"] {
            #expect(corpusFiles.contains { $0.hasPrefix(vendor) }, "no \(vendor) transcript")
        }
    }

    @Test("probe: the expected profile, chosen as expected and saying why, the SIM's state and attempts, within its deadline", arguments: corpusFiles)
    func probe(file: String) throws {
        let replay = try RunningReplay(file)
        let modem = try openReplayed(replay)
        defer { modem.close() }
        let report = try modem.probe()
        let expected = replay.transcript
        #expect(report.profile == expected.expectProfile, "\(file): \(report.choice?.reason ?? "")")
        let choice = try #require(report.choice)
        #expect(choice.kind == expected.expectChoice, "\(file): \(choice.reason)")
        #expect(choice.isFallback == (expected.expectChoice != "model"), "\(file)")
        #expect(!choice.reason.isEmpty)
        #expect(report.sim?.state == .pinRequired, "\(file): \(report.unknown)")
        if expected.expectCounters {
            #expect(report.sim?.pinAttempts == expected.pinAttempts, "\(file): \(report.unknown)")
            #expect(report.sim?.counterSource != nil)
        } else {
            #expect(report.sim?.pinAttempts == nil)
            #expect(report.unknown.contains { $0.hasPrefix("attempts left:") }, "\(file): \(report.unknown)")
        }
        if expected.expectChoice != "generic" { #expect(report.identity.model != nil, "\(file)") }
        #expect(replay.modem.stats.pinCommands == 0)
    }

    @Test("the right PIN is sent once and unlocks; the profile is chosen again and the modem registers", arguments: corpusFiles)
    func unlockAndRegister(file: String) throws {
        let replay = try RunningReplay(file)
        let expected = replay.transcript
        let modem = try openReplayed(replay) { $0.allowUnknownAttempts = !expected.expectCounters }
        defer { modem.close() }
        let outcome = try modem.unlock(pin: try SIMPIN(expected.pinCode))
        #expect(outcome == .unlocked(attemptsBefore: expected.expectCounters ? expected.pinAttempts : nil), "\(file)")
        #expect(replay.modem.stats.pinCommands == 1 && replay.modem.stats.pinSentAtOrBelowFloor == 0)
        try modem.chooseProfile(in: repositoryHardware)
        #expect(modem.profile.name == (expected.expectProfileReady ?? expected.expectProfile), "\(file): \(modem.choice?.reason ?? "")")
        let registrations = try modem.waitForRegistration(timeout: 2)
        #expect(NetworkStatus(registrations: registrations).overall?.isRegistered == true, "\(file): \(registrations)")
    }

    @Test("a wrong PIN is sent once and the attempts left are reported; without counters none is sent", arguments: corpusFiles)
    func wrongPIN(file: String) throws {
        let replay = try RunningReplay(file)
        let expected = replay.transcript
        let modem = try openReplayed(replay)
        defer { modem.close() }
        if expected.expectCounters {
            #expect(throws: ModemError.pinRejected(attemptsLeft: expected.pinAttempts - 1)) { try modem.unlock(pin: try SIMPIN("9876")) }
            #expect(replay.modem.stats.pinCommands == 1 && replay.modem.stats.wrongPins == 1)
        } else {
            #expect(throws: ModemError.pinRefused(attemptsLeft: nil, floor: 1)) { try modem.unlock(pin: try SIMPIN("9876")) }
            #expect(replay.modem.stats.pinCommands == 0)
        }
        #expect(replay.modem.stats.pukLocks == 0)
    }

    @Test("with one attempt left (the floor) no PIN is sent", arguments: corpusFiles)
    func lastAttempt(file: String) throws {
        let replay = try RunningReplay(file) { $0.pinAttempts = 1 }
        let modem = try openReplayed(replay)
        defer { modem.close() }
        let left: Int? = replay.transcript.expectCounters ? 1 : nil
        #expect(throws: ModemError.pinRefused(attemptsLeft: left, floor: 1)) { try modem.unlock(pin: try SIMPIN(replay.transcript.pinCode)) }
        #expect(replay.modem.stats.pinCommands == 0 && replay.modem.stats.pinSentAtOrBelowFloor == 0)
    }

    @Test("a busy SIM (+CME ERROR: 14) is re-read until it answers; the PIN still goes once", arguments: corpusFiles)
    func busySIM(file: String) throws {
        let replay = try RunningReplay(file) { $0.busyReads = 2 }
        let expected = replay.transcript
        let modem = try openReplayed(replay) { $0.allowUnknownAttempts = !expected.expectCounters }
        defer { modem.close() }
        #expect(try modem.unlock(pin: try SIMPIN(expected.pinCode)) == .unlocked(attemptsBefore: expected.expectCounters ? expected.pinAttempts : nil))
        #expect(replay.modem.stats.pinCommands == 1 && replay.modem.stats.pinSentAtOrBelowFloor == 0)
    }

    @Test("a modem that goes silent on one query: the probe still ends, with what it learned and that query named as unknown")
    func probeOutlivesASilentQuery() throws {
        let work = TemporaryDirectory("modem-silent")
        let file = work.path + "/silent.transcript"
        try """
            # source: test fixture (a SIMCom that never answers AT+CSQ)
            model = silent SIM800
            sim = ready
            [any]
            > AT
            < OK
            > ATE0
            < OK
            > ATV1
            < OK
            > AT+CMEE=1
            < OK
            > ATX4
            < OK
            > AT&C1
            < OK
            > AT+CGMI
            < SIMCOM_Ltd
            < OK
            > AT+CGMM
            < SIMCOM_SIM800L
            < OK
            > AT+CPIN?
            < +CPIN: {cpin}
            < OK
            > AT+SPIC
            < +SPIC: {pin},{puk},3,10
            < OK
            > AT+CREG?
            < +CREG: 0,1
            < OK
            > AT+CGREG?
            < +CGREG: 0,1
            < OK
            > AT+CSQ
            > AT+COPS?
            < +COPS: 0,0,"Orange Polska",3
            < OK
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let replay = try TranscriptModem(transcript: try ModemTranscript.load(path: file))
        replay.start()
        defer { replay.stop() }
        var config = fastConfig()
        config.commandTimeout = 0.3
        config.probeTimeout = 5
        let modem = try Modem.open(port: replay.path, profile: try repositoryHardware.modem("generic"), config: config, lockDirectory: nil)
        defer { modem.close() }
        modem.adoptVendorCodes(from: repositoryHardware)
        try modem.start()
        try modem.chooseProfile(in: repositoryHardware)
        let report = try modem.probe()
        #expect(report.profile == "simcom-sim800" && report.sim?.state == .ready && report.sim?.pinAttempts == 3)
        #expect(report.network.overall == .home && report.network.operatorName == "Orange Polska" && report.network.technology == "EDGE")
        #expect(report.network.rssiDBm == nil)
        #expect(report.unknown.contains { $0.hasPrefix("signal:") && $0.contains("no answer") }, "\(report.unknown)")
    }
}
