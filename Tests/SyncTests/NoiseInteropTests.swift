import Foundation
import Seal
import Sync
import Testing

/// Our handshake against an independent implementation (PyPI `noiseprotocol`), beside the
/// published vectors: the vectors pin the arithmetic, this pins the message layout and roles.
/// CI installs the package and checks it is there, so in CI this never skips.
let pythonNoiseAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import noise.connection"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
}()

@Suite("Noise IK against noiseprotocol (Python)", .enabled(if: pythonNoiseAvailable, "needs `pip install noiseprotocol`"))
struct NoiseInteropTests {

    @Test("our device completes a handshake with a Python hub and reads its transport message")
    func deviceToPythonHub() throws {
        let hub = X25519.KeyPair.generate()
        let device = try NoiseHandshake(role: .initiator, staticKey: .generate(), remoteStatic: hub.publicKey, prologue: Array("satchel sync 1".utf8))
        let first = try device.writeFirst(payload: Array("urządzenie WAW07".utf8))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("noise_responder.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let hubSecret = hub.secretKey.withUnsafeBytes { Hex.encode(Array($0)) }
        process.arguments = ["python3", script, hubSecret, Hex.encode(Array("satchel sync 1".utf8)), "hub ok — хъб"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data((Hex.encode(first) + "\n").utf8))
        try input.fileHandleForWriting.close()
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").map(String.init)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0 && lines.count == 3, "python peer failed: \(lines)")
        #expect(try Hex.decode(lines[0]) == Array("urządzenie WAW07".utf8))
        #expect(try device.readSecond(Hex.decode(lines[1])) == Array("hub ok — хъб".utf8))
        let (_, receive) = try device.transport()
        #expect(try receive.decrypt(Hex.decode(lines[2])) == Array("Поздрави от хъба, pozdrowienia z huba".utf8))
    }
}
