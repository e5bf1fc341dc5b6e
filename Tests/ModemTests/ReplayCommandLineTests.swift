import Foundation
import Modem
import ModemSimulator
import SatchelTesting
import Testing

/// `satchel-sim modem replay FILE` as a process: the pty path it prints, its statistics at the end.
final class ReplayProcess {
    let process = Process()
    let output = Pipe()
    let path: String

    init(_ file: String, _ extra: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: BuiltExecutable.path("satchel-sim"))
        process.arguments = ["modem", "replay", file, "--json"] + extra
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is {"path": ...}; wait for it at most 10 s.
        var bytes: [UInt8] = []
        let deadline = Date().addingTimeInterval(10)
        let fd = output.fileHandleForReading.fileDescriptor
        while !bytes.contains(0x0A) && Date() < deadline {
            var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 100) > 0 else { continue }
            var byte: UInt8 = 0
            guard read(fd, &byte, 1) == 1 else { break }
            bytes.append(byte)
        }
        let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        path = try #require(object?["path"] as? String, "satchel-sim modem replay printed no path")
    }

    /// Stops the replayer and returns what it counted (SIGKILL if it has not ended within 10 s).
    func stop() throws -> [String: Any] {
        process.interrupt()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        return (try JSONSerialization.jsonObject(with: rest) as? [String: Any]) ?? [:]
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
}

@Suite("satchel modem probe as a process against satchel-sim modem replay", .serialized)
struct ReplayCommandLineTests {
    let lock = TemporaryDirectory("modem-replay-lock")

    func probeArguments(_ path: String, hardware: Bool = true) -> [String] {
        ["modem", "probe", "--port", path, "--lock-dir", lock.path, "--timeout", "1", "--json"] + (hardware ? ["--hardware", repositoryHardware.path] : [])
    }

    @Test("every corpus transcript: the real satchel exits 0 with the expected profile, why it was chosen, and the attempts left; no PIN sent")
    func probeEveryTranscript() throws {
        for file in corpusFiles {
            let transcript = try ModemTranscript.load(path: transcriptDirectory + "/" + file)
            let replay = try ReplayProcess(transcriptDirectory + "/" + file)
            let run = try runProcess("satchel", probeArguments(replay.path), timeout: 60)
            let stats = try replay.stop()
            try #require(run.status == 0, "\(file): \(run.stderr)")
            let object = try json(run.stdout)
            #expect(object["profile"] as? String == transcript.expectProfile, "\(file): \(object["profile_reason"] ?? "")")
            #expect(object["profile_basis"] as? String == transcript.expectChoice, "\(file)")
            #expect(object["profile_fallback"] as? Bool == (transcript.expectChoice != "model"), "\(file)")
            #expect((object["profile_reason"] as? String)?.isEmpty == false)
            #expect(object["sim"] as? String == "pin_required")
            #expect(object["pin_attempts"] as? Int == (transcript.expectCounters ? transcript.pinAttempts : nil), "\(file): \(object["unknown"] ?? "")")
            #expect(object["unknown"] is [String])
            #expect(stats["pin_commands"] as? Int == 0, "\(file)")
        }
    }

    @Test("without --hardware, a build in a checkout finds the checkout's hardware/ and says so (no silent generic profile)")
    func findsTheCheckoutsHardware() throws {
        let replay = try ReplayProcess(transcriptDirectory + "/huawei-e1550.transcript")
        defer { _ = try? replay.stop() }
        let elsewhere = TemporaryDirectory("modem-cwd")
        var environment = ProcessInfo.processInfo.environment
        environment["SATCHEL_HARDWARE"] = nil
        let run = try runProcess("satchel", probeArguments(replay.path, hardware: false), timeout: 60, directory: elsewhere.path, environment: environment)
        try #require(run.status == 0, "\(run.stderr)")
        let object = try json(run.stdout)
        #expect(object["profile"] as? String == "huawei-e173")
        #expect((object["hardware"] as? String)?.hasSuffix("(the source checkout)") == true, "\(object["hardware"] ?? "")")
        #expect((object["hardware"] as? String)?.hasPrefix(repositoryHardware.path) == true)
    }

    @Test("probe --record writes a transcript that replays to the same report; IMEI serial, IMSI and ICCID masked, PIN nowhere; an existing file is refused untouched")
    func recordRoundTrip() throws {
        let work = TemporaryDirectory("modem-record")
        // A field modem that answers identification only through ATI until the PIN, with an IMEI
        // and ICCID in that answer and a Cyrillic operator name.
        let fixture = work.path + "/field.transcript"
        try """
            # source: test fixture
            model = Field modem
            sim = pin pin 2 puk 10
            pin_code = 4711
            expect_profile = simcom-sim800
            expect_choice = ati
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
            > ATI
            < SIMCOM_Ltd
            < SIMCOM_SIM800L
            < Revision:1418B05SIM800L24
            < IMEI: 352099001761481
            < ICCID: 89480012345678901234
            < OK
            > AT+CPIN?
            < +CPIN: {cpin}
            < OK
            > AT+SPIC
            < +SPIC: {pin},{puk},3,10
            < OK
            > AT+CREG?
            < +CREG: 0,5
            < OK
            > AT+CGREG?
            < +CGREG: 0,5
            < OK
            > AT+CSQ
            < +CSQ: 12,99
            < OK
            > AT+COPS?
            < +COPS: 0,0,"МегаФон",0
            < OK
            [locked]
            > *
            < +CME ERROR: 11
            """.write(toFile: fixture, atomically: true, encoding: .utf8)
        let recording = work.path + "/recorded.transcript"
        let first = try ReplayProcess(fixture)
        let recorded = try runProcess("satchel", probeArguments(first.path) + ["--record", recording], timeout: 60)
        _ = try first.stop()
        try #require(recorded.status == 0, "\(recorded.stderr)")
        let original = try json(recorded.stdout)
        #expect(original["profile"] as? String == "simcom-sim800" && original["profile_basis"] as? String == "ati")
        #expect(original["imei"] as? String == "352099001761481" && original["operator"] as? String == "МегаФон")
        let text = try String(contentsOfFile: recording, encoding: .utf8)
        #expect(!text.contains("1761481") && !text.contains("2345678901234") && !text.contains("4711"), "\(text)")
        #expect(text.contains("IMEI: 352099000000000") && text.contains("ICCID: 894800**************"))
        #expect(text.contains("+CPIN: {cpin}"))

        // The recording replays: the same report, but for the masked IMEI.
        let second = try ReplayProcess(recording, ["--attempts", "2"])
        let replayed = try runProcess("satchel", probeArguments(second.path), timeout: 60)
        _ = try second.stop()
        try #require(replayed.status == 0, "\(replayed.stderr)")
        let again = try json(replayed.stdout)
        for key in ["profile", "profile_basis", "manufacturer", "model", "revision", "sim", "pin_attempts", "registration", "rssi_dbm", "operator"] {
            #expect("\(again[key] ?? "nil")" == "\(original[key] ?? "nil")", "\(key)")
        }
        #expect(again["imei"] as? String == "352099000000000")

        // Recording over an existing file is refused, the file untouched, before the modem is opened.
        let before = try Data(contentsOf: URL(fileURLWithPath: recording))
        let refused = try runProcess("satchel", probeArguments("/dev/satchel-no-such-modem") + ["--record", recording], timeout: 30)
        #expect(refused.status != 0 && refused.stderr.contains("already exists"), "\(refused.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: recording)) == before)
    }
}
