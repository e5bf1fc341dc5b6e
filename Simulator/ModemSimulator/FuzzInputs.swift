/// Inputs for fuzzing the agent's response parser: real modems' lines (and malformed ones),
/// mutated (flips, cuts, duplications, noise, overlong runs), or plain random bytes.
public struct FuzzInputs {
    public static let corpus: [String] = [
        "OK", "ERROR", "+CME ERROR: 16", "+CME ERROR: SIM busy", "+CMS ERROR: 500", "CONNECT", "CONNECT 115200",
        "CONNECT FAIL", "NO CARRIER", "BUSY", "NO DIALTONE", "NO ANSWER", "0", "4", "RING", "SHUT OK", "CLOSE OK",
        "+CPIN: READY", "+CPIN: SIM PIN", "+CPIN: SIM PUK", "+CPIN: NOT INSERTED", "+CPIN: PH-NET PIN",
        "+CPINR: \"SIM PIN\",3,3", "+CPINR: SIM PUK,10,10", "+QPINC: \"SC\",3,10", "+QPINC: \"P2\",3,10",
        "+SPIC: 3,10,0,10", "^CPIN: SIM PIN,3,10,3,10,3", "+UPINCNT: 3,3,10,10", "#PCT: 3", "+CSIM: 4,\"63C3\"",
        "+CSIM: 4,\"6983\"", "+CSIM: 4,\"9000\"", "+CREG: 0,1", "+CREG: 2,5,\"00C3\",\"1A2B\",0", "+CREG: 1",
        "+CGREG: 0,2", "+CEREG: 0,4", "+CREG: 3", "+CSQ: 15,99", "+CSQ: 99,99", "+CSQ: 31,0", "+COPS: 0,0,\"Orange PL\",3",
        "+COPS: 0", "+COPS: 1,2,\"26003\",7", "SIMCOM_Ltd", "Revision:1418B05SIM800L24", "866262037890123",
        "+CGSN: \"866262037890123\"", "10.145.33.7", "+QIURC: \"closed\",0", "+QIURC: \"pdpdeact\",1",
        "+CIPRXGET: 1", "^RSSI: 17", "^MODE: 3,3", "Call Ready", "SMS Ready", "RDY", "+CFUN: 1",
        "AT+CPIN=\"1234\"", "AT+CSTT=\"internet\",\"user\",\"secret\"", "AT+QICSGP=1,1,\"apn\",\"u\",\"p\",1",
        "+CREG: ", "+CSQ: ,", "+COPS: 0,0,\"unterminated", "+CPINR: \"SIM PIN\",-1,3", "+CSQ: 150,99", "+CSIM: 4,\"63CZ\"",
    ]

    var random: SimRandom

    public init(seed: UInt64) { random = SimRandom(seed: seed) }

    /// The next input: 1 to 8 pieces joined by line endings, some mutated.
    public mutating func next() -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                bytes += (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1:
                bytes += [UInt8](repeating: UInt8.random(in: 0x20...0x7E, using: &random), count: Int.random(in: 400...3_000, using: &random))
            default:
                var line = Array(Self.corpus[Int.random(in: 0..<Self.corpus.count, using: &random)].utf8)
                for _ in 0..<Int.random(in: 0...3, using: &random) where !line.isEmpty {
                    let index = Int.random(in: 0..<line.count, using: &random)
                    switch Int.random(in: 0..<5, using: &random) {
                    case 0: line[index] = UInt8.random(in: 0...255, using: &random)
                    case 1: line.removeSubrange(index...)
                    case 2: line.insert(UInt8.random(in: 0...255, using: &random), at: index)
                    case 3: line.insert(contentsOf: [0x2C, 0x22], at: index)
                    default: line += line
                    }
                }
                bytes += line
            }
            bytes += [[0x0D, 0x0A], [0x0D], [0x0A], [0x0D, 0x0D, 0x0A], [0x00, 0x0D, 0x0A]][Int.random(in: 0..<5, using: &random)]
        }
        return bytes
    }
}
