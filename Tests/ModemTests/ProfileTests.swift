import Modem
import SatchelTesting
import Testing

@Suite("Hardware profiles")
struct ProfileTests {
    @Test("every modem profile in hardware/modems parses and ends its open script with CONNECT")
    func allProfilesParse() throws {
        let names = repositoryHardware.modemNames()
        #expect(names.count >= 8, "\(names)")
        for name in names {
            let profile = try repositoryHardware.modem(name)
            #expect(profile.openScript.last?.expect == .connect, "\(name)")
            #expect(!profile.pinCounters.isEmpty, "\(name)")
            #expect(profile.initCommands.map(\.template).prefix(3) == ["ATE0", "ATV1", "AT+CMEE=1"], "\(name)")
        }
    }

    @Test("the built-in fallback equals hardware/modems/generic.modem")
    func builtInGeneric() throws {
        #expect(try repositoryHardware.modem("generic") == ModemProfile.builtInGeneric)
        #expect(ModemProfile.builtInGeneric.openScript.count == 3)
    }

    @Test("dialects are detected from AT+CGMI / AT+CGMM")
    func detection() {
        #expect(repositoryHardware.detect(manufacturer: "SIMCOM_Ltd", model: "SIMCOM_SIM800L")?.name == "simcom-sim800")
        #expect(repositoryHardware.detect(manufacturer: "SIMCOM INCORPORATED", model: "SIMCOM_SIM5320E")?.name == "simcom-sim5320")
        #expect(repositoryHardware.detect(manufacturer: "Quectel", model: "EC21")?.name == "quectel-ec21")
        #expect(repositoryHardware.detect(manufacturer: "Quectel_Ltd", model: "Quectel_M95")?.name == "quectel-m95")
        #expect(repositoryHardware.detect(manufacturer: "huawei", model: "E173")?.name == "huawei-e173")
        #expect(repositoryHardware.detect(manufacturer: "Generic", model: "GSM-3GPP") == nil)
    }

    @Test("script steps: optional, auth-only, expectations and timeouts; bad ones are refused")
    func steps() throws {
        let step = try #require(ScriptStep.parse("?auth:AT+CGAUTH=1,1,\"{user}\",\"{password}\" -> ok @7", defaultTimeout: 5))
        #expect(step.optional && step.onlyWithUser && step.timeout == 7 && step.expect == .final)
        #expect(step.command(["user": "u", "password": "p"]) == "AT+CGAUTH=1,1,\"u\",\"p\"")
        #expect(ScriptStep.parse("AT+CIFSR -> ip", defaultTimeout: 5)?.expect == .ipAddress)
        #expect(ScriptStep.parse("AT+X -> maybe", defaultTimeout: 5) == nil)
        #expect(ScriptStep.parse("rm -rf / -> ok", defaultTimeout: 5) == nil)
        #expect(ScriptStep.parse("AT @0", defaultTimeout: 5) == nil)
        #expect(throws: ModemError.self) { try ModemProfile.parse("name = x\nopen = AT+CGDCONT=1\n", name: "x") }
        #expect(throws: ModemError.self) { try ModemProfile.parse("colour = red\n", name: "x") }
    }

    @Test("board profiles name the port and the power key GPIO")
    func boards() throws {
        let board = try repositoryHardware.board("rugged-h1")
        #expect(board.serialDevice == "/dev/satchel-modem" && board.modemProfile == "simcom-sim800")
        #expect(board.powerKeyGPIO == "/sys/class/gpio/gpio23/value" && board.powerKeyPulseSeconds == 1.2)
        #expect(try repositoryHardware.board("usb-dongle").powerKeyGPIO == nil)
    }
}
