public import Agent
import Backup
import Field
import Journal
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `satchel console`: the whole sales visit on the handheld's 32x16 screen with its keypad.
/// Pages are drawn into a cell buffer and only the changed cells are sent to the terminal; every
/// save goes through `DeviceAgent.capture(in:)`, and the screen says SAVED only once it returned.
public enum Console {
    public struct Options {
        /// Where to write the session's figures at exit (bytes sent, full-redraw bytes, per-key
        /// times): the console benchmark reads them. nil: none.
        public var statisticsPath: String?
        /// The links the sync page offers (the command line builds them: the network, and the
        /// modem when this handheld has one configured).
        public var syncLinks: [(name: String, link: SyncLink)]
        /// The app password; nil: the device has none.
        public var lock: ConsoleLock?
        public init(statisticsPath: String? = nil, syncLinks: [(name: String, link: SyncLink)] = [("network", .network)], lock: ConsoleLock? = nil) {
            self.statisticsPath = statisticsPath
            self.syncLinks = syncLinks
            self.lock = lock
        }
    }

    /// Runs until the rep quits (or a SIGTERM/SIGHUP, or the terminal goes away); the terminal is
    /// restored on every way out. A locked device starts on the unlock page, and the database is
    /// opened once it is unlocked.
    public static func run(agent: DeviceAgent, options: Options = Options()) throws {
        let locked = options.lock?.isLocked() ?? false
        let device = locked ? nil : try agent.open()
        let terminal = Terminal()
        try terminal.enterRawMode()
        defer { terminal.restore() }
        let app = ConsoleApp(agent: agent, device: device, terminal: terminal, options: options)
        app.loop()
        if let path = options.statisticsPath { app.statistics.write(to: path) }
    }
}

/// Figures of one session, for docs/benchmarks.md: what was sent against what full redraws
/// would have sent, and how long each key took from its bytes read to its frame written.
struct Statistics {
    var frames = 0
    var bytesSent = 0
    var fullRedrawBytes = 0
    var keys = 0
    var keyMicroseconds: [Int] = []
    /// The slowest keys with the page they were on, to say where the time went.
    var slowest: [(microseconds: Int, page: String)] = []
    var detail: [String] = []

    func write(to path: String) {
        let sorted = keyMicroseconds.sorted()
        func percentile(_ p: Int) -> Int { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * p / 100)] }
        let text = """
            {"frames":\(frames),"bytes_sent":\(bytesSent),"full_redraw_bytes":\(fullRedrawBytes),"keys":\(keys),\
            "key_us_p50":\(percentile(50)),"key_us_p99":\(percentile(99)),"key_us_max":\(sorted.last ?? 0),\
            "slowest":[\(slowest.map { "[\($0.microseconds),\"\($0.page.filter { $0.isLetter || $0 == " " })\"]" }.joined(separator: ","))],\
            "frames_detail":[\(detail.joined(separator: ","))]}

            """
        let file = fopen(path, "w")
        guard let file else { return }
        fputs(text, file)
        fclose(file)
    }
}

func monotonicMicroseconds() -> Int {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int(spec.tv_sec) * 1_000_000 + Int(spec.tv_nsec) / 1_000
}

/// A page of the console: draws itself into the body and handles keys.
protocol Page: AnyObject {
    var title: String { get }
    /// The key hints on the last line ("Ent open  0 menu").
    var hints: String { get }
    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp)
    func handle(_ key: Key, app: ConsoleApp)
    /// Called when the page comes back to the top (data may have changed under it).
    func reappear(app: ConsoleApp)
    /// What the benchmark calls the frames of this page (the title, unless a page has phases).
    var statisticsLabel: String { get }
}

extension Page {
    func reappear(app: ConsoleApp) {}
    var statisticsLabel: String { title }
}

final class ConsoleApp {
    let agent: DeviceAgent
    /// Open from the start, or from the moment a locked device is unlocked.
    private(set) var device: DeviceDatabase!
    let terminal: Terminal
    let syncLinks: [(name: String, link: SyncLink)]
    let lock: ConsoleLock?
    var pages: [any Page] = []
    var message: (text: String, style: Style)?
    var running = true
    var statistics = Statistics()
    var measuring: Bool
    private var size: Terminal.Size
    private var shown: ScreenBuffer? = nil
    /// Where the terminal's cursor is after the last frame (nil: unknown).
    private var cursor: ScreenBuffer.Position? = nil

    init(agent: DeviceAgent, device: DeviceDatabase?, terminal: Terminal, options: Console.Options) {
        self.agent = agent
        self.device = device
        self.terminal = terminal
        syncLinks = options.syncLinks
        lock = options.lock
        size = terminal.size()
        measuring = getenv("SATCHEL_CONSOLE_STATS") != nil
        if device != nil {
            start()
        } else if let lock = options.lock {
            pages = [UnlockPage(lock: lock)]
        }
    }

    var today: String { CalendarDay.string(fromMilliseconds: device.clock.nowMilliseconds()) }

    /// Moving to another page clears the message line; what a save says is set after the move.
    func push(_ page: any Page) {
        message = nil
        pages.append(page)
    }

    func pop(_ count: Int = 1) {
        message = nil
        for _ in 0..<count where pages.count > 1 { pages.removeLast() }
        pages.last?.reappear(app: self)
    }

    private var customers: Customers.SearchIndex?
    /// Whether the loop has folded the customers ahead of the first search (once: a failure is
    /// said by the search itself).
    private var prefolded = false

    /// The customers folded once per session, so searching as the rep types stays fast.
    func customerIndex() throws -> Customers.SearchIndex {
        if let customers { return customers }
        let index = try Customers.SearchIndex(Customers(device))
        customers = index
        return index
    }

    func say(_ text: String, _ style: Style = .plain) { message = (text, style) }
    func fail(_ error: any Error) { message = ("NOT SAVED: \(error)", Style(colour: .red, bold: true)) }

    /// What the screen says once a capture returned: SAVED and what, and when the card does not
    /// have it yet, NOT ON CARD (the status page says why).
    func saved<Value>(_ saved: DeviceAgent.Saved<Value>, _ what: String) {
        say("SAVED \(what)" + (saved.warning == nil ? "" : " NOT ON CARD"), Style(colour: saved.warning == nil ? .green : .yellow, bold: true))
    }

    /// Saves through the one capture path; returns nil (and says why) when it did not save. A
    /// device that locked itself meanwhile (idle) asks for the password, and the page that was
    /// saving is there again after it, its entries as they were.
    func capture<Value>(_ function: WorkplaceFunction, _ body: (DeviceDatabase) throws -> Value) -> DeviceAgent.Saved<Value>? {
        do {
            return try agent.capture(function, in: device, body)
        } catch {
            fail(error)
            if let lock, lock.isLocked() {
                let reason = message
                push(UnlockPage(lock: lock, afterSave: true))
                message = reason
            }
            return nil
        }
    }

    // MARK: What was on the screen, unsaved, when the console last ended

    /// `console-unsaved` in the data directory: what the rep has entered and not saved yet (an
    /// order of 3 lines for ...), kept while it is on the screen. A power cut or a killed
    /// console leaves it behind, and the next start says what was lost; a save or a discard
    /// removes it. Not a document: nothing in it is ever sent or restored.
    var unsavedPath: String { agent.configuration.home + "/console-unsaved" }

    /// What `noteUnsaved` says of a document being written line by line ("the order for X, 2 lines,").
    static func unsavedNote(_ document: String, for name: String, lines: Int) -> String {
        "the \(document) for \(name), \(lines) line\(lines == 1 ? "" : "s"),"
    }

    func noteUnsaved(_ text: String?) {
        guard let text else {
            try? PosixFileSystem().remove(unsavedPath)
            return
        }
        try? IdentityFiles.writeAtomically(unsavedPath, Array((text + "\n").utf8))
    }

    /// What the last session left unsaved, once: read and removed.
    func takeUnsaved() -> String? {
        guard let bytes = try? PosixFileSystem().read(unsavedPath, max: FileSystemLimits.smallFile) else { return nil }
        try? PosixFileSystem().remove(unsavedPath)
        let text = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        return text.isEmpty ? nil : text
    }

    /// The route, first page of a session, saying what the last one left unsaved.
    func start() {
        pages = [RoutePage(app: self)]
        if let lost = takeUnsaved() {
            say("LAST SESSION ENDED UNSAVED: \(lost) was NOT saved; enter it again", Style(colour: .red, bold: true))
        }
    }

    /// The password was right: open the database if it was not yet, and go on where the rep was;
    /// `sim`: what the SIM answered at this unlock, said after it (nil: nothing to say).
    func unlocked(afterSave: Bool, sim: (text: String, style: Style)? = nil) {
        if device == nil {
            do {
                device = try agent.open()
            } catch {
                return say("\(error)", Style(colour: .red, bold: true))
            }
            message = nil
            start()
            // What the last session left unsaved (`start`) stays first, in its colour.
            if let sim { say((message.map { $0.text + ". " } ?? "") + sim.text, message?.style ?? sim.style) }
        } else {
            pop()
            say((afterSave ? "Unlocked: save again" : "Unlocked") + (sim.map { ". " + $0.text } ?? ""), sim?.style ?? .plain)
        }
    }

    /// When the session was last used (monotonic microseconds), to refresh it at most every 15 s.
    private var lastTouch = Int.min / 2

    /// The idle lock, as every command has it: `idle_lock_minutes` without use (or `satchel lock`
    /// from another shell) ends the agent's session. Keys use it, refreshing its timer at most
    /// every 15 s (it is a file write); a console that finds it ended, at a key or after 5 s
    /// without one, covers the page with the unlock page and drops the keys that found it (the
    /// rep did not type them for the page they no longer see). The page under it stays as it
    /// was, its entries unsaved and kept. Whether the device locked is asked each time: it may
    /// lock from outside.
    func checkLock(keyPressed: Bool) -> Bool {
        guard let lock, device != nil, !(pages.last is UnlockPage) else { return false }
        guard lock.isLocked() else {
            let now = monotonicMicroseconds()
            if keyPressed && now - lastTouch >= 15_000_000 {
                lastTouch = now
                lock.touch()
            }
            return false
        }
        push(UnlockPage(lock: lock))
        say("LOCKED: idle too long or locked; type the password", Style(colour: .yellow, bold: true))
        return true
    }

    /// Draws the top page and sends what changed; `started` is when the key that caused it was read.
    func redraw(started: Int? = nil) {
        var screen = ScreenBuffer(columns: size.columns, rows: size.rows)
        draw(&screen)
        let bytes = screen.difference(from: shown, cursor: &cursor)
        terminal.write(bytes)
        shown = screen
        guard measuring else { return }
        statistics.frames += 1
        statistics.bytesSent += bytes.count
        let full = screen.difference(from: nil).count
        statistics.fullRedrawBytes += full
        statistics.detail.append("[\(bytes.count),\(full),\"\((pages.last?.statisticsLabel ?? "").filter { $0.isLetter || $0.isNumber || $0 == " " || $0 == "-" })\"]")
        if let started {
            let elapsed = monotonicMicroseconds() - started
            statistics.keyMicroseconds.append(elapsed)
            statistics.slowest.append((elapsed, pages.last?.title ?? ""))
            statistics.slowest = Array(statistics.slowest.sorted { $0.microseconds > $1.microseconds }.prefix(5))
        }
    }

    func loop() {
        var decoder = KeyDecoder()
        var started: Int? = nil
        while running {
            redraw(started: started)
            started = nil
            // The customers folded once the first screen is up, not on the first key typed into
            // a customer search (5,000 of them: 30-80 ms in release, over the 50 ms a key may take).
            if device != nil && !prefolded {
                prefolded = true
                _ = try? customerIndex()
            }
            var keys: [Key] = []
            switch terminal.read(milliseconds: decoder.isWaiting ? 40 : 5_000) {
            case .bytes(let input):
                started = monotonicMicroseconds()
                keys = decoder.feed(input)
                if checkLock(keyPressed: true) { keys = [] }
            case .timeout:
                keys = decoder.flush()
                if checkLock(keyPressed: false) { keys = [] }
            case .resized:
                size = terminal.size()
                shown = nil
                cursor = nil
            case .quit:
                running = false
            case .closed:
                running = false
            }
            for key in keys where running {
                statistics.keys += 1
                pages.last?.handle(key, app: self)
            }
        }
    }

    func draw(_ screen: inout ScreenBuffer) {
        guard let page = pages.last else { return }
        if screen.columns < 16 || screen.rows < 6 {
            // Said in as few columns as possible: what the rep sees until the screen is bigger.
            screen.put(0, 0, "Too small")
            screen.put(1, 0, "\(screen.columns)x\(screen.rows)")
            screen.put(2, 0, "need 16x6")
            return
        }
        screen.line(0, page.title, .title)
        let bottom = screen.rows - 1
        page.draw(&screen, body: 1..<(bottom - 1), app: self)
        if let message {
            // Up to five lines, over the body's last ones: why a save failed must be readable whole.
            let lines = wrap(message.text, width: screen.columns).prefix(5)
            for (offset, line) in lines.enumerated() { screen.line(bottom - lines.count + offset, line, message.style) }
        }
        screen.line(bottom, page.hints, Style(colour: .cyan))
    }
}

// MARK: Shared drawing

/// Greedy word wrap for the body (long reasons, talking points).
func wrap(_ text: String, width: Int) -> [String] {
    guard width > 0 else { return [] }
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ") {
        var word = Substring(word)
        while word.count > width {
            if !current.isEmpty { lines.append(current); current = "" }
            lines.append(String(word.prefix(width)))
            word = word.dropFirst(width)
        }
        if current.isEmpty {
            current = String(word)
        } else if current.count + 1 + word.count <= width {
            current += " " + word
        } else {
            lines.append(current)
            current = String(word)
        }
    }
    if !current.isEmpty { lines.append(current) }
    return lines
}

/// Text padded or cut to exactly `width` characters (columns of a list).
/// A page's load on `reappear`: what went wrong is kept for the page to show in red instead
/// of its rows, and a load that works clears an earlier failure.
func load(into loadError: inout String?, _ body: () throws -> Void) {
    do {
        try body()
        loadError = nil
    } catch {
        loadError = "\(error)"
    }
}

func fit(_ text: String, _ width: Int) -> String {
    guard width > 0 else { return "" }
    if text.count <= width { return text + String(repeating: " ", count: width - text.count) }
    return String(text.prefix(width - 1)) + "~"
}

func disciplineStyle(_ discipline: Customers.Discipline) -> Style {
    switch discipline {
    case .strict: return Style(colour: .green, bold: true)
    case .hesitant: return Style(colour: .yellow, bold: true)
    case .disloyal: return Style(colour: .red, bold: true)
    }
}

func disciplineWord(_ discipline: Customers.Discipline) -> String {
    switch discipline {
    case .strict: return "PAYS ON TIME"
    case .hesitant: return "PAYS LATE"
    case .disloyal: return "DOES NOT PAY"
    }
}

/// A selectable list drawn in the body, scrolled so the selection stays in view.
struct ListView {
    var selected = 0

    /// Keeps the selection on one of `count` rows (after a reload or a removal).
    mutating func clamp(count: Int) { selected = min(selected, max(count - 1, 0)) }

    /// Removes the selected row of `rows` (an order's or a quote's line), the selection staying
    /// on a row; false when no row is selected.
    mutating func removeSelected<Row>(from rows: inout [Row]) -> Bool {
        guard rows.indices.contains(selected) else { return false }
        rows.remove(at: selected)
        clamp(count: rows.count)
        return true
    }

    mutating func handle(_ key: Key, count: Int) -> Bool {
        switch key {
        case .up: selected = max(selected - 1, 0)
        case .down: selected = min(selected + 1, max(count - 1, 0))
        case .pageUp: selected = max(selected - 5, 0)
        case .pageDown: selected = min(selected + 5, max(count - 1, 0))
        case .home: selected = 0
        case .end: selected = max(count - 1, 0)
        default: return false
        }
        return true
    }

    /// `markOnly`: the selection is shown by its first word reversed (an order line's number),
    /// not the whole row: moving it then resends two numbers, not two whole rows (a style
    /// change resends every character it covers).
    func draw(_ screen: inout ScreenBuffer, rows: Range<Int>, lines: [(String, Style)], markOnly: Bool = false) {
        guard !rows.isEmpty else { return }
        let height = rows.count
        let first = max(0, min(selected - height / 2, lines.count - height))
        for (offset, index) in (first..<min(lines.count, first + height)).enumerated() {
            let (text, style) = lines[index]
            let reversed = Style(colour: style.colour, bold: style.bold, reverse: true)
            if markOnly {
                screen.line(rows.lowerBound + offset, text, style)
                if index == selected { screen.put(rows.lowerBound + offset, 0, String(text.prefix { $0 != " " }), reversed) }
            } else {
                screen.line(rows.lowerBound + offset, text, index == selected ? reversed : style)
            }
        }
    }
}

/// Items named "digit label", chosen by their digit or by Enter on the highlighted one: the
/// menu and a customer's actions.
struct DigitMenu {
    enum Outcome { case moved, chosen(Character), back }

    let items: [String]
    var list = ListView()
    static let hints = "digit/Ent choose Esc back"

    func draw(_ screen: inout ScreenBuffer, rows: Range<Int>) {
        list.draw(&screen, rows: rows, lines: items.map { ($0, .plain) })
    }

    /// A key moves the highlight (or does nothing: `.moved`), chooses an item's digit, or goes back.
    mutating func handle(_ key: Key) -> Outcome {
        if list.handle(key, count: items.count) { return .moved }
        switch key {
        case .enter: return items[list.selected].first.map { .chosen($0) } ?? .moved
        case .character(let digit) where items.contains(where: { $0.first == digit }): return .chosen(digit)
        case .escape: return .back
        default: return .moved
        }
    }
}

/// A one-line text field: printable characters, Backspace.
struct TextField {
    var text = ""
    var maximum = 40

    /// Whether the key edited the text.
    mutating func handle(_ key: Key, allowed: (Character) -> Bool = { _ in true }) -> Bool {
        switch key {
        case .character(let character) where allowed(character) && text.count < maximum:
            text.append(character)
            return true
        case .backspace, .delete:
            guard !text.isEmpty else { return false }
            text.removeLast()
            return true
        default:
            return false
        }
    }

    /// The text plain and the cursor a plain `_` after it (the focused field is the one with
    /// the `_`): a typed character then costs three bytes on the line (back one, the character,
    /// the `_`) where bold text and a reversed cursor cost sixteen, their style changes included.
    func draw(_ screen: inout ScreenBuffer, row: Int, label: String, focused: Bool = true) {
        let start = screen.put(row, 0, label)
        let room = screen.columns - start - 1
        let shown = text.count > room ? String(text.suffix(room)) : text
        let end = screen.put(row, start, shown)
        if focused { screen.put(row, end, "_") }
    }
}
