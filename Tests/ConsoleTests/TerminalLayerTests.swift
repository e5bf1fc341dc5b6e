@testable import Console
import Testing

@Suite("Console: keys from terminal bytes, cells to terminal bytes")
struct TerminalLayerTests {
    @Test("arrows, F-keys and Enter decode whether a sequence arrives whole or split over reads")
    func splitSequences() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0x1B, 0x5B, 0x41, 0x0D]) == [.up, .enter])
        #expect(decoder.feed([0x1B]) == [])
        #expect(decoder.isWaiting)
        #expect(decoder.feed([0x5B]) == [])
        #expect(decoder.feed([0x42]) == [.down])
        #expect(decoder.feed(Array("\u{1B}OP\u{1B}[13~".utf8)) == [.function(1), .function(3)])
        #expect(decoder.feed(Array("\u{1B}[5~\u{1B}[3~".utf8)) == [.pageUp, .delete])
    }

    @Test("a lone Esc is the Esc key once no more bytes come; an unknown sequence is dropped whole, never typed")
    func escapeAndUnknown() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0x1B]) == [])
        #expect(decoder.flush() == [.escape])
        #expect(decoder.feed(Array("\u{1B}[?25h".utf8) + [0x31]) == [.character("1")])
        #expect(decoder.feed(Array("\u{1B}[200~".utf8)) == [])
        #expect(!decoder.isWaiting)
        // An unfinished CSI is dropped at the deadline, not left to eat the next key.
        #expect(decoder.feed(Array("\u{1B}[1;".utf8)) == [])
        #expect(decoder.flush() == [])
        #expect(decoder.feed([0x32]) == [.character("2")])
    }

    @Test("UTF-8 letters decode across reads; invalid bytes and C1 controls are dropped")
    func utf8() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0xD0]) == [])
        #expect(decoder.feed([0xB6]) == [.character("ж")])
        #expect(decoder.feed(Array("Łó".utf8)) == [.character("Ł"), .character("ó")])
        #expect(decoder.feed([0xFF, 0xFE, 0x41]) == [.character("A")])
        #expect(decoder.feed([0xC2, 0x9B, 0x42]) == [.character("B")])  // C1 CSI as UTF-8: a control, dropped
        #expect(decoder.feed([0x00, 0x07]) == [])
    }

    @Test("text from outside lands in cells without controls, bidi overrides or wide characters")
    func safeCells() {
        var screen = ScreenBuffer(columns: 12, rows: 2)
        screen.put(0, 0, "Łódź\u{1B}[2J\u{202E}К")
        #expect(screen[0, 0].character == "Ł")
        #expect(screen[0, 4].character == "?" && screen[0, 4].style == .replaced)
        let bytes = screen.difference(from: nil)
        #expect(!bytes.contains(0x07))
        #expect(!String(decoding: bytes, as: UTF8.self).contains("\u{202E}"))
        // The text's ESC became a marked "?" cell; its "[2J" is plain text after it.
        #expect(String(decoding: bytes, as: UTF8.self).contains("Łódź\u{1B}[0;7;31m?\u{1B}[0m[2J"))
        screen.put(1, 0, "山")
        #expect(screen[1, 0].character == "?")
    }

    @Test("a change of one cell sends a cursor move and that cell, not the screen")
    func differences() {
        var before = ScreenBuffer(columns: 32, rows: 16)
        for row in 0..<16 { before.line(row, "Строка \(row) — wiersz \(row)") }
        let full = before.difference(from: nil)
        var after = before
        after.put(3, 7, "X")
        let change = after.difference(from: before)
        #expect(String(decoding: change, as: UTF8.self) == "\u{1B}[4;8H\u{1B}[0mX")
        #expect(change.count * 20 < full.count)
        #expect(before.difference(from: before).isEmpty)
        // A different size (a resize) draws everything again.
        #expect(ScreenBuffer(columns: 24, rows: 10).difference(from: before).starts(with: Array("\u{1B}[0m\u{1B}[2J".utf8)))
    }
}
