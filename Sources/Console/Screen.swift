/// How a cell is drawn. Few styles on purpose: a handheld's console may have 8 colours or none.
struct Style: Equatable, Sendable {
    enum Colour: UInt8, Sendable { case none = 0, red = 31, green = 32, yellow = 33, cyan = 36 }
    var colour: Colour = .none
    var bold = false
    var reverse = false

    static let plain = Style()
    static let title = Style(bold: true, reverse: true)
    static let selected = Style(reverse: true)
    static let strong = Style(bold: true)
    /// A character that came from outside and cannot be shown as it is (a control, a bidi override).
    static let replaced = Style(colour: .red, reverse: true)

    var sgr: String {
        var codes = ["0"]
        if bold { codes.append("1") }
        if reverse { codes.append("7") }
        if colour != .none { codes.append(String(colour.rawValue)) }
        return "\u{1B}[" + codes.joined(separator: ";") + "m"
    }
}

struct Cell: Equatable {
    var character: Character = " "
    var style: Style = .plain
}

/// The screen as a grid of cells, drawn into by the screens and sent to the terminal as the
/// difference from what the terminal already shows: on a 9600-baud serial console a full redraw
/// of 32x16 takes half a second, a changed line a few milliseconds.
struct ScreenBuffer {
    private(set) var columns: Int
    private(set) var rows: Int
    private var cells: [Cell]

    init(columns: Int, rows: Int) {
        self.columns = max(columns, 1)
        self.rows = max(rows, 1)
        cells = Array(repeating: Cell(), count: self.columns * self.rows)
    }

    subscript(row: Int, column: Int) -> Cell {
        get { cells[row * columns + column] }
        set { cells[row * columns + column] = newValue }
    }

    mutating func clear() { cells = Array(repeating: Cell(), count: columns * rows) }

    /// Writes `text` at (row, column), clipped to the line; returns the column after it. Text
    /// from outside is made safe cell by cell: controls, format characters (bidi overrides, zero
    /// width) and line separators show as a red `?`, wide characters (CJK, emoji) as `?` too, so
    /// the grid the diff relies on stays exact and nothing reaches the terminal raw.
    @discardableResult
    mutating func put(_ row: Int, _ column: Int, _ text: String, _ style: Style = .plain) -> Int {
        guard row >= 0, row < rows else { return column }
        var column = column
        for character in text {
            guard column < columns else { break }
            if column >= 0 {
                if let safe = Self.displayable(character) {
                    self[row, column] = Cell(character: safe, style: style)
                } else {
                    self[row, column] = Cell(character: "?", style: .replaced)
                }
            }
            column += 1
        }
        return column
    }

    /// Fills a whole line with `text` padded with spaces, in `style` (titles, the selection).
    mutating func line(_ row: Int, _ text: String, _ style: Style = .plain) {
        let end = put(row, 0, text, style)
        if end < columns { put(row, end, String(repeating: " ", count: columns - end), style) }
    }

    static func displayable(_ character: Character) -> Character? {
        guard let first = character.unicodeScalars.first else { return nil }
        switch first.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: return nil
        default: break
        }
        if isWide(first.value) { return nil }
        // Combining marks after a base letter are part of it (one cell); alone, they are not text.
        if first.properties.generalCategory == .nonspacingMark || first.properties.generalCategory == .enclosingMark { return nil }
        return character
    }

    static func isWide(_ value: UInt32) -> Bool {
        switch value {
        case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x1F300...0x1FAFF, 0x20000...0x3FFFD: return true
        default: return false
        }
    }

    /// The bytes that turn `shown` (what the terminal has; nil: unknown, draw everything) into
    /// this buffer: the cursor moved only to runs of changed cells, the style set only when it
    /// changes, a line's blank tail erased with one EL. Never more than a full redraw.
    func difference(from shown: ScreenBuffer?) -> [UInt8] {
        guard let shown, shown.columns == columns, shown.rows == rows else { return render(from: nil) }
        let changed = render(from: shown)
        if changed.count <= 64 { return changed }
        let full = render(from: nil)
        return full.count < changed.count ? full : changed
    }

    private func render(from shown: ScreenBuffer?) -> [UInt8] {
        var out = ""
        let blank = Cell()
        if shown == nil { out += "\u{1B}[0m\u{1B}[2J" }
        var style: Style? = shown == nil ? .plain : nil
        var cursor: (row: Int, column: Int)? = nil
        for row in 0..<rows {
            // Where this row's blank tail starts: nothing but plain spaces from there on.
            var tail = columns
            while tail > 0 && self[row, tail - 1] == blank { tail -= 1 }
            for column in 0..<columns {
                let cell = self[row, column]
                if let shown, shown[row, column] == cell {
                    // An unchanged cell right where the cursor is, with a change a few cells on:
                    // rewriting it is shorter than moving the cursor over it (CUP is 6-8 bytes).
                    guard let at = cursor, at == (row, column), style == cell.style,
                          ((column + 1)..<min(column + 4, columns)).contains(where: { shown[row, $0] != self[row, $0] }) else { continue }
                    out.append(cell.character)
                    cursor = (row, column + 1)
                    continue
                }
                if shown == nil && cell == blank { continue }
                if column >= tail, shown != nil {
                    // Everything from here to the end of the line becomes blank: erase it at once.
                    if cursor == nil || cursor! != (row, column) { out += "\u{1B}[\(row + 1);\(column + 1)H" }
                    if style != .plain { out += Style.plain.sgr; style = .plain }
                    out += "\u{1B}[K"
                    cursor = (row, column)
                    break
                }
                if cursor == nil || cursor! != (row, column) {
                    out += "\u{1B}[\(row + 1);\(column + 1)H"
                }
                if style != cell.style {
                    out += cell.style.sgr
                    style = cell.style
                }
                out.append(cell.character)
                cursor = (row, column + 1)
            }
        }
        if style != nil && style != .plain { out += "\u{1B}[0m" }
        return Array(out.utf8)
    }
}
