@testable import Agent
import SatchelTesting
import SystemCalls
import Field
import Journal
import Testing

/// The card lock (one writer to the card at a time) under errnos forced by the syscall seam.
@Suite("Card lock through the syscall seam")
struct CardLockSeamTests {
    @Test("EINTR on open and flock is retried and the body runs once; EWOULDBLOCK waits, then takes the lock")
    func interruptedAndBusy() throws {
        let directory = TemporaryDirectory("card-lock")
        let lock = CardLock(path: directory.path + "/card.lock")
        var runs = 0
        let log = try SystemCalls.withFaults([.init("open", .interrupted, times: 2), .init("flock", .interrupted, times: 2), .init("flock", .wouldBlock, times: 1)]) {
            try lock.withLock(timeoutSeconds: 2) { runs += 1 }
        }
        #expect(runs == 1)
        #expect(log.injected.filter { $0 == "flock" }.count == 3 && log.injected.filter { $0 == "open" }.count == 2, "\(log.injected)")
    }

    @Test("EIO opening or locking is a typed error naming the lock and the errno; the body never runs")
    func failures() throws {
        let directory = TemporaryDirectory("card-lock")
        let path = directory.path + "/card.lock"
        for call in ["open", "flock"] {
            var ran = false
            let thrown = #expect(throws: CardLock.Failure.self) {
                try SystemCalls.withFaults([.onCall(1, of: call, .ioError)]) { try CardLock(path: path).withLock { ran = true } }
            }
            #expect(!ran)
            guard case .cannotOpen(let named, let code)? = thrown else { Issue.record("\(String(describing: thrown))"); continue }
            #expect(named == path && code == EIO_CODE)
            #expect(thrown?.description.contains("Input/output error (errno 5)") == true, "\(String(describing: thrown))")
        }
    }

    @Test("a lock held by another descriptor times out with the path and the wait in the message")
    func timesOut() throws {
        let directory = TemporaryDirectory("card-lock")
        let lock = CardLock(path: directory.path + "/card.lock")
        try lock.withLock {
            // flock locks belong to the open file description: a second open conflicts, also in one process.
            let thrown = #expect(throws: CardLock.Failure.self) { try lock.withLock(timeoutSeconds: 0.05) {} }
            #expect(thrown?.description.contains("for more than 0.05 s") == true, "\(String(describing: thrown))")
        }
    }
}

private let EIO_CODE = Errno.ioError.rawValue

/// A card on the real file system whose writes fail in the kernel: the capture goes on (the
/// internal database holds it) and the card report, which `satchel` prints after a capture,
/// names the failing file and the errno, not only "the card is full".
@Suite("Card write failures keep their errno")
struct CardWriteErrnoTests {
    @Test("ENOSPC and EIO on the card journal's write: the report names the file and the errno; the next capture catches up",
          arguments: [(Errno.noSpace, "errno 28"), (Errno.ioError, "errno 5")])
    func cardWriteFails(_ errno: Errno, _ text: String) throws {
        let fixture = try BackupFixture()
        let cardRoot = fixture.directory.path + "/card"
        try PosixFileSystem().createDirectory(cardRoot)
        var configuration = fixture.configuration
        configuration.cardRoot = cardRoot
        let agent = DeviceAgent(configuration, cardFileSystem: PosixFileSystem(), clock: fixture.clock)
        let device = try fixture.open()
        try agent.initCard(device, passphrase: BackupFixture.passphrase)
        _ = try Capture(device).recordVisit(customerID: "C1", outcome: .noOrder, note: "")
        var report: CardReport!
        let log = SystemCalls.withFaults([.init("pwrite", errno)]) { report = agent.mirror(device) }
        #expect(log.injected.contains("pwrite"))
        #expect(report.state != .ok && (report.message ?? "").contains(text) && (report.message ?? "").contains(cardRoot), "\(report.summary)")
        #expect(agent.mirror(device).state == .ok)
    }
}
