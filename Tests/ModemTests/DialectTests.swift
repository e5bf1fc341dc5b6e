import Foundation
import Modem
import SatchelTesting
import Testing

@Suite("Dialects as data: vendor names, profile choice, vendor counters, field recordings")
struct DialectTests {
    @Test("manufacturer names as real modems send them normalise to the profiles' vendors", arguments: [
        ("SIMCOM_Ltd", "SIMCOM"), ("SIMCOM INCORPORATED", "SIMCOM"), ("Quectel_Ltd", "QUECTEL"), ("Quectel", "QUECTEL"),
        ("ZTE INCORPORATED", "ZTE"), ("HUAWEI INCORPORATED", "HUAWEI"), ("huawei", "HUAWEI"), ("QUALCOMM INCORPORATED", "QUALCOMM"),
        ("Sierra Wireless, Inc.", "SIERRA"), ("Sierra Wireless, Incorporated", "SIERRA"), (" WAVECOM MODEM", "WAVECOM"),
        ("u-blox", "U-BLOX"), ("\"Telit\"", "TELIT"), ("INCORPORATED", ""), ("ALTD", "ALTD"),
    ])
    func vendorNames(raw: String, vendor: String) {
        #expect(repositoryHardware.normalizedVendor(raw) == vendor)
    }

    @Test("the choice: a model pattern, else the vendor's default (a fallback), else generic (a fallback), each saying why")
    func choices() {
        let byModel = repositoryHardware.choose(manufacturer: "SIMCOM INCORPORATED", model: "SIMCOM_SIM7600G-H", identifiedBy: "AT+CGMI/AT+CGMM").1
        #expect(byModel.profile == "simcom-sim7600" && byModel.basis == .model && !byModel.isFallback)
        #expect(byModel.reason.contains("SIM7600*"))
        // The A7670 says only "INCORPORATED": its model alone picks SIMCom's profile.
        #expect(repositoryHardware.choose(manufacturer: "INCORPORATED", model: "A7670SA-FASE", identifiedBy: "ATI").1.profile == "simcom-sim7600")
        let byVendor = repositoryHardware.choose(manufacturer: "Quectel", model: "BG95-M3", identifiedBy: "AT+CGMI/AT+CGMM").1
        #expect(byVendor.profile == "quectel-ec21" && byVendor.basis == .vendor && byVendor.isFallback)
        #expect(byVendor.reason.contains("fallback") && byVendor.reason.contains("BG95-M3"))
        let unknown = repositoryHardware.choose(manufacturer: "Nokia", model: "N79", identifiedBy: "AT+CGMI/AT+CGMM").1
        #expect(unknown.profile == "generic" && unknown.basis == .generic && unknown.isFallback && unknown.reason.contains("Nokia"))
        let silent = repositoryHardware.choose(manufacturer: nil, model: nil, identifiedBy: nil).1
        #expect(silent.profile == "generic" && silent.reason.contains("did not identify itself"))
        // A model pattern of another vendor does not win over what the manufacturer says.
        #expect(repositoryHardware.choose(manufacturer: "huawei", model: "MF627", identifiedBy: nil).1.profile == "huawei-e173")
    }

    @Test("vendor final codes and terminators are profile data, gathered from every profile")
    func vendorCodes() throws {
        let codes = repositoryHardware.vendorCodes()
        #expect(codes.finals.contains("COMMAND NOT SUPPORT") && codes.finals.contains("TOO MANY PARAMETERS"))
        #expect(codes.terminators == ["+CPIN:"])
        #expect(throws: ModemError.self) { try ModemProfile.parse("final = OK\nopen = ATD*99# -> connect\n", name: "x") }
        #expect(throws: ModemError.self) { try ModemProfile.parse("terminator = +CPIN\nopen = ATD*99# -> connect\n", name: "x") }
    }

    @Test("Sierra/Wavecom +CPINC, ZTE +ZPINPUK, whole-APDU +CSIM and quoted +CPIN codes are read; malformed ones are not", arguments: [
        (PINCounterQuery.cpinc, ["+CPINC: 3,3,10,10"], PINCounters?(PINCounters(pin: 3, puk: 10))),
        (.cpinc, ["+CPINC: 1,3,7,10"], PINCounters(pin: 1, puk: 7)),
        (.cpinc, ["+CPINC: 3,3"], nil),
        (.cpinc, ["+CPINC: 99,3,10,10"], nil),
        (.zpinpuk, ["+ZPINPUK: 2,10"], PINCounters(pin: 2, puk: 10)),
        (.zpinpuk, ["+ZPINPUK: 2"], nil),
        (.csim, ["+CSIM:8,\"000063C1\""], PINCounters(pin: 1, puk: nil)),
        (.csim, ["+CSIM: 8, \"000063C3\""], PINCounters(pin: 3, puk: nil)),
        (.csim, ["+CSIM: 8, 000063CF"], nil),
    ])
    func counters(query: PINCounterQuery, lines: [String], expected: PINCounters?) {
        #expect(query.parse(lines, state: .pinRequired) == expected)
    }

    @Test("+CPIN codes quoted or not; ATI answers labelled, Quectel-style or a single model line")
    func cpinAndATI() {
        #expect(ATParse.cpin(["+CPIN: \"SIM PIN\""]) == .pinRequired)
        #expect(ATParse.cpin(["+CPIN: \"READY\""]) == .ready)
        let labelled = ATParse.ati(["Manufacturer: Sierra Wireless, Incorporated", "Model: MC7455", "Revision: SWI9X30C_02.33.03.00", "IMEI: 359072061513111", "+GCAP: +CGSM"])
        #expect(labelled.manufacturer == "Sierra Wireless, Incorporated" && labelled.model == "MC7455" && labelled.imei == "359072061513111")
        let quectel = ATParse.ati(["Quectel", "EC25", "Revision: EC25EFAR06A03M4G"])
        #expect(quectel.manufacturer == "Quectel" && quectel.model == "EC25" && quectel.revision == "EC25EFAR06A03M4G")
        let single = ATParse.ati(["SARA-G450-00C-00"])
        #expect(single.manufacturer == nil && single.model == "SARA-G450-00C-00")
        #expect(ATParse.identity(["\u{FE}", "SIMCOM_Ltd"], prefixes: []) == "SIMCOM_Ltd")
    }

    @Test("a line that is not UTF-8 reads as Latin-1; C1 controls never pass through")
    func latin1() {
        var splitter = LineSplitter()
        var lines: [String] = []
        for byte in Array("+COPS: 0,0,\"Telef".utf8) + [0xF3] + Array("nica\",2\r\n".utf8) + [0xC2, 0x9B] + Array("31m\r\n".utf8) + Array("Мегафон\r\n".utf8) {
            if let line = splitter.push(byte) { lines.append(line) }
        }
        #expect(lines == ["+COPS: 0,0,\"Telefónica\",2", "?31m", "Мегафон"])
    }

    @Test("a recording masks IMSI, ICCID (any command or prefix), the IMEI's serial, leaves PIN entries out and keeps Latin-1 as escapes")
    func recorderMasks() {
        let recorder = TranscriptRecorder()
        for line in [
            "> AT", "< AT", "< OK",
            "> AT+CPIN=\"****\"", "< OK",
            "> AT+CIMI", "< 260061234567890", "< OK",
            "> AT+CCID", "< +CCID: 89480061234567890123", "< OK",
            "> AT+QCCID", "< 8935901990012345678F", "< OK",
            "> AT+CRSM=176,12258,0,0,10", "< +CRSM: 144,0,\"98840612345678900132\"", "< OK",
            "> AT+CGSN", "< 352099001761481", "< OK",
            "> ATI", "< IMEI: 352099001761481", "< SN: 12345678901234567", "< OK",
            "> AT+CPIN?", "< +CPIN: SIM PIN", "< OK",
            "> AT+COPS?", "< +COPS: 0,0,\"Telefónica\",2", "< OK",
        ] { recorder.observe(line) }
        let text = recorder.text(report: nil, note: "test")
        for secret in ["1234567890", "61234567890123", "1990012345678", "612345678900132", "1761481", "12345678901234567"] {
            #expect(!text.contains(secret), "\(secret) in \(text)")
        }
        #expect(!text.contains("AT+CPIN="))
        #expect(text.contains("< 26006**********") && text.contains("< +CCID: 894800**************") && text.contains("< 893590*************"))
        #expect(text.contains("< 352099000000000") && text.contains("< IMEI: 352099000000000"))
        #expect(text.contains("< +CPIN: {cpin}") && text.contains("Telef\\xF3nica") && text.contains("echo = on"))
    }

    @Test("a recording is never written through a symbolic link planted at its temporary name, nor over an existing file; the error names the path")
    func recorderRefusesPlantedLink() throws {
        let directory = TemporaryDirectory("recording")
        let victim = directory.file("victim"), path = directory.file("probe.modem")
        try Data("the victim's own bytes\n".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(atPath: path + ".tmp", withDestinationPath: victim)
        let recorder = TranscriptRecorder()
        recorder.observe("> AT")
        recorder.observe("< OK")
        let error = #expect(throws: ModemError.self) { try recorder.write(to: path, report: nil, note: "test") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: victim)) == Data("the victim's own bytes\n".utf8))
        #expect("\(error.map { "\($0)" } ?? "")".contains(path + ".tmp"), "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: path))
        try FileManager.default.removeItem(atPath: path + ".tmp")
        try recorder.write(to: path, report: nil, note: "test")
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("> AT"))
        let again = #expect(throws: ModemError.self) { try recorder.write(to: path, report: nil, note: "again") }
        #expect("\(again.map { "\($0)" } ?? "")".contains(path), "\(String(describing: again))")
        #expect(!(try String(contentsOfFile: path, encoding: .utf8).contains("again")))
    }
}
