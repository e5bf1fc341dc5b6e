// Which profile a modem gets, from data in hardware/modems (vendor names, model patterns, the
// vendor's default profile), and why: a profile chosen by fallback says so, because the PIN
// counter command and with it the PIN safety rule depend on it.

/// The profile a modem got and why.
public struct ProfileChoice: Sendable, Equatable {
    public enum Basis: String, Sendable {
        /// `--profile` or the board profile named it.
        case requested
        /// A model pattern of the profile matched.
        case model
        /// The vendor is known but not the model: the vendor's default profile (a fallback).
        case vendor
        /// Nothing matched: the generic 3GPP profile (a fallback).
        case generic
    }

    public var profile: String
    public var basis: Basis
    /// `AT+CGMI/AT+CGMM`, `ATI` (when those failed), or nil when the modem said nothing.
    public var identifiedBy: String?
    public var reason: String

    public init(profile: String, basis: Basis, identifiedBy: String?, reason: String) {
        self.profile = profile
        self.basis = basis
        self.identifiedBy = identifiedBy
        self.reason = reason
    }

    /// True unless the profile was named or a model pattern matched what AT+CGMI/AT+CGMM said.
    public var isFallback: Bool {
        switch basis {
        case .requested: return false
        case .model: return identifiedBy == "ATI"
        case .vendor, .generic: return true
        }
    }

    /// model, vendor, ati or generic (requested): how the transcripts' `expect_choice` names it.
    public var kind: String {
        switch basis {
        case .requested, .generic, .vendor: return basis.rawValue
        case .model: return identifiedBy == "ATI" ? "ati" : "model"
        }
    }
}

extension HardwareDirectory {
    /// Every profile that parses (a broken one is skipped here; `modem(_:)` reports it by name).
    public func profiles() -> [ModemProfile] {
        modemNames().compactMap { try? modem($0) }
    }

    /// The endings stripped from manufacturer names (vendors.conf), or the built-in list.
    public func vendorSuffixes() -> [String] {
        guard let text = readSmallFile(path + "/modems/vendors.conf") else { return Self.builtInSuffixes }
        var suffixes: [String] = []
        for raw in text.split(separator: "\n") {
            let line = trimmed(raw)
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "="), trimmed(line[..<equals]) == "suffix" else { continue }
            let value = trimmed(line[line.index(after: equals)...]).uppercased()
            if !value.isEmpty { suffixes.append(value) }
        }
        return suffixes.isEmpty ? Self.builtInSuffixes : suffixes
    }

    static let builtInSuffixes = ["INCORPORATED", "INC.", "INC", "CO., LTD.", "LTD.", "LTD", "WIRELESS SOLUTIONS", "WIRELESS", "TECHNOLOGIES", "MODEM"]

    /// Vendor final result codes and answer terminators of every profile: the vendor is not known
    /// before identification, and none of these lines can be mistaken for an answer's content.
    public func vendorCodes() -> (finals: [String], terminators: [String]) {
        var finals: [String] = []
        var terminators: [String] = []
        for profile in profiles() {
            for final in profile.finals where !finals.contains(final) { finals.append(final) }
            for terminator in profile.terminators where !terminators.contains(terminator) { terminators.append(terminator) }
        }
        return (finals, terminators)
    }

    /// "SIMCOM_Ltd" -> SIMCOM, "Sierra Wireless, Incorporated" -> SIERRA, "INCORPORATED" -> "".
    public func normalizedVendor(_ manufacturer: String) -> String {
        let suffixes = vendorSuffixes()
        var name = trimmed(Substring(manufacturer)).uppercased()
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
        var changed = true
        while changed {
            changed = false
            name = trimmedSeparators(name)
            for suffix in suffixes where name.hasSuffix(suffix) {
                let rest = name.dropLast(suffix.count)
                // Only whole words: "LTD" ends "SIMCOM_LTD", not "ALTD".
                guard rest.isEmpty || rest.last == " " || rest.last == "_" || rest.last == "," || rest.last == "-" else { continue }
                name = String(rest)
                changed = true
            }
        }
        return name
    }

    private func trimmedSeparators(_ text: String) -> String {
        var view = Substring(text)
        while let last = view.last, last == " " || last == "," || last == "_" || last == "-" { view = view.dropLast() }
        while let first = view.first, first == " " { view = view.dropFirst() }
        return String(view)
    }

    /// Chooses the profile for what the modem said. A model pattern wins (the longest one, and one
    /// of the right vendor before any other); then the vendor's default profile; then generic.
    public func choose(manufacturer: String?, model: String?, identifiedBy: String?) -> (ModemProfile, ProfileChoice) {
        let vendor = manufacturer.map(normalizedVendor) ?? ""
        var modelName = trimmed(Substring(model ?? "")).uppercased()
        if modelName.count >= 2, modelName.hasPrefix("\""), modelName.hasSuffix("\"") { modelName = String(modelName.dropFirst().dropLast()) }
        var bareModel = modelName
        for prefix in [vendor + "_", vendor + " ", vendor + "-", "MODEL:"] where !vendor.isEmpty || prefix == "MODEL:" {
            if bareModel.hasPrefix(prefix) { bareModel = trimmed(bareModel.dropFirst(prefix.count)) }
        }
        let said = [manufacturer.map { "manufacturer '\($0)'" }, model.map { "model '\($0)'" }].compactMap { $0 }.joined(separator: ", ")
        let source = identifiedBy.map { " (from \($0))" } ?? ""
        let all = profiles()
        var best: (score: Int, profile: ModemProfile, pattern: String)?
        if !bareModel.isEmpty {
            for profile in all {
                let vendorAgrees = vendor.isEmpty || profile.vendors.contains(vendor)
                for pattern in profile.models where globMatch(pattern, bareModel) || globMatch(pattern, modelName) {
                    let score = (vendorAgrees ? 1_000 : 0) + pattern.count
                    if best == nil || score > best!.score { best = (score, profile, pattern) }
                }
            }
        }
        if let best, best.score >= 1_000 || vendor.isEmpty {
            let reason = "\(said)\(source) matches \(best.profile.name)'s model pattern \(best.pattern)"
            return (best.profile, ProfileChoice(profile: best.profile.name, basis: .model, identifiedBy: identifiedBy, reason: reason))
        }
        if !vendor.isEmpty, let fallback = all.first(where: { $0.vendorDefault && $0.vendors.contains(vendor) }) {
            let reason = "\(said)\(source): vendor \(vendor) is known but no profile lists this model; using \(fallback.name), the vendor's default (fallback)"
            return (fallback, ProfileChoice(profile: fallback.name, basis: .vendor, identifiedBy: identifiedBy, reason: reason))
        }
        let generic = (try? modem("generic")) ?? ModemProfile.builtInGeneric
        let reason: String
        if said.isEmpty {
            reason = "the modem did not identify itself (AT+CGMI, AT+CGMM and ATI failed); using generic 3GPP commands (fallback)"
        } else {
            reason = "no profile in \(path)/modems knows \(said)\(source); using generic 3GPP commands (fallback)"
        }
        return (generic, ProfileChoice(profile: generic.name, basis: .generic, identifiedBy: identifiedBy, reason: reason))
    }
}

/// `*` (any run) and `?` (one character) over upper-cased text.
func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8), t = Array(text.utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == 0x3F || p[pi] == t[ti]) {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == 0x2A {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == 0x2A { pi += 1 }
    return pi == p.count
}
