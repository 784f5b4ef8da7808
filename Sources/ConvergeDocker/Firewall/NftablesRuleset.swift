import ConvergeCore

/// Renders a `FirewallPolicy` as nftables input, and names the commands that apply, list and
/// remove it. Pure text: the provider runs it in the router (`nft -c -f -` to check, then
/// `nft -f -`).
///
/// Each policy gets its own table, `table inet converge_<policy name>`, holding one base chain
/// `forward`. A table per policy (rather than one shared `converge` table with a chain per
/// policy) because:
/// - the table is the unit nftables replaces atomically and deletes in one command, so
///   applying or removing one policy can never disturb another table's rules, Converge's or not;
/// - the table name alone maps live state back to its manifest (`policyName(forTable:)`), so a
///   renamed policy is a delete of one table and a create of another, never two steps racing
///   over one table;
/// - everything inside the table is Converge's: a rule, chain or set found there that the
///   policy does not describe is drift, shown in the plan and removed by the next apply.
///
/// Policy names are resource names (`[A-Za-z0-9][A-Za-z0-9_.-]*`), which nftables accepts in
/// identifiers as they are, so the table name is the name itself after the prefix and maps back
/// exactly; anything else is replaced by `_` as a safeguard.
public enum NftablesRuleset {
    public static let family = "inet"
    public static let tablePrefix = "converge_"
    public static let chainName = "forward"
    /// The forward chain's declaration (without its policy), as the `chain` field carries it.
    public static let forwardChainType = "type filter hook forward priority 0"

    /// `converge_<name>`.
    public static func tableName(forPolicy name: String) -> String {
        let safe = String(String.UnicodeScalarView(name.unicodeScalars.map { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_.-".unicodeScalars.contains(scalar)) ? scalar : "_"
        }))
        return tablePrefix + safe
    }

    /// The policy a live table belongs to; nil for tables that are not Converge's.
    public static func policyName(forTable table: String) -> String? {
        guard table.hasPrefix(tablePrefix), table.count > tablePrefix.count else { return nil }
        return String(table.dropFirst(tablePrefix.count))
    }

    /// The policy's table, in the form `nft list table` prints:
    ///
    /// ```
    /// table inet converge_s1-edge {
    /// 	comment "FirewallPolicy/s1-edge, managed by Converge: changes made here are undone"
    /// 	chain forward {
    /// 		type filter hook forward priority 0; policy drop;
    /// 		ip protocol icmp accept comment "allow-icmp"
    /// 	}
    /// }
    /// ```
    /// The table comment is for people reading `nft list ruleset` on the router; ownership does
    /// not depend on it (nft 1.0.6 does not report table comments in JSON).
    public static func table(_ policy: FirewallPolicySpec, name: String) -> String {
        var lines = ["table \(family) \(tableName(forPolicy: name)) {"]
        let comment = "FirewallPolicy/\(name), managed by Converge: changes made here are undone"
        lines.append("\tcomment \"\(comment.utf8.count <= 128 ? comment : "managed by Converge: changes made here are undone")\"")
        lines.append("\tchain \(chainName) {")
        lines.append("\t\t\(forwardChainType); policy \(policy.defaultAction.rawValue);")
        for rule in policy.rules {
            lines.append("\t\t\(rule.statement)")
        }
        lines.append("\t}")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `nft -f` script that replaces the policy's table in one transaction:
    ///
    /// ```
    /// table inet converge_s1-edge {}
    /// delete table inet converge_s1-edge
    /// table inet converge_s1-edge { … }
    /// ```
    /// The first line makes the delete valid when the table does not exist yet. `delete` rather
    /// than the common `flush table`: a flush empties the chains but keeps them, and keeps sets
    /// and the table's comment, so a chain or set added by hand would survive every apply and
    /// a base chain whose hook or priority was changed by hand could not be redeclared. nftables
    /// runs the whole file as one transaction, so traffic sees the old table or the new one,
    /// never none; other tables are not touched.
    public static func replaceScript(_ policy: FirewallPolicySpec, name: String) -> String {
        let table = tableName(forPolicy: name)
        return "table \(family) \(table) {}\ndelete table \(family) \(table)\n" + self.table(policy, name: name)
    }

    /// The replace script for a table given as text (a snapshot taken with `nft list table`
    /// before a change), for putting the previous ruleset back in one transaction.
    public static func replaceScript(withTable text: String, policyName name: String) -> String {
        removeScript(policyName: name) + text
    }

    /// The `nft -f` script that removes the policy's table; it succeeds when the table is
    /// already gone, so a retried or resumed delete step is harmless.
    public static func removeScript(policyName name: String) -> String {
        let table = tableName(forPolicy: name)
        return "table \(family) \(table) {}\ndelete table \(family) \(table)\n"
    }

    /// The command whose output `NftablesJSON.parseTable` reads. It fails (exit 1, "No such
    /// file or directory" on stderr) when the table does not exist.
    public static func listCommand(policyName name: String) -> [String] {
        ["nft", "-j", "list", "table", family, tableName(forPolicy: name)]
    }

    /// The exec command that runs `nft <arguments>` (e.g. `["-c", "-f", "-"]`) with `script`
    /// on its standard input, for exec APIs without stdin: the script travels as arguments to
    /// `sh` and `printf` joins them back. Linux caps one argument at 128 KiB (MAX_ARG_STRLEN),
    /// which a 1,000-rule policy can pass, so the script is cut at line ends into pieces of at
    /// most `pieceLimit` bytes (a single longer line is cut anywhere; printf rejoins it).
    public static func shellCommand(nft arguments: [String], script: String, pieceLimit: Int = 100_000) -> [String] {
        pipedCommand(["nft"] + arguments, script: script, pieceLimit: pieceLimit)
    }

    /// The same for any command (`iptables-restore --noflush` on routers without nft).
    public static func pipedCommand(_ command: [String], script: String, pieceLimit: Int = 100_000) -> [String] {
        var pieces: [String] = []
        var current = ""
        var currentBytes = 0
        func add(_ text: some StringProtocol) {
            let bytes = text.utf8.count
            if currentBytes + bytes > pieceLimit, currentBytes > 0 {
                pieces.append(current)
                current = ""
                currentBytes = 0
            }
            current += text
            currentBytes += bytes
        }
        let lines = script.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            let text = index < lines.count - 1 ? line + "\n" : String(line)
            if text.utf8.count <= pieceLimit {
                add(text)
            } else {
                // One enormous line: cut between characters, never inside a UTF-8 sequence.
                for character in text { add(String(character)) }
            }
        }
        if currentBytes > 0 || pieces.isEmpty { pieces.append(current) }
        let quoted = command.dropFirst().map { argument in
            "'" + argument.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
        }
        return ["sh", "-c", "printf %s \"$@\" | \(([command[0]] + quoted).joined(separator: " "))", "sh"] + pieces
    }

    /// Lists every table in the router, for finding policies to prune (`NftablesJSON.tables`).
    public static let listTablesCommand = ["nft", "-j", "list", "tables"]
}
