import CLibevent
import Foundation

/// libevent's asynchronous resolver, set up to behave like the C library's: the search domains,
/// options and hosts file of /etc/resolv.conf and /etc/hosts, but queries go to the first
/// nameserver only and names keep their case. evdns by default rotates over every nameserver and
/// randomizes letter case; container DNS servers (podman's) answer mixed-case names with NXDOMAIN,
/// and the host's resolver listed after them does not know container names.
enum UpstreamResolver {
    static func make(base: OpaquePointer, resolvConf: String = "/etc/resolv.conf") -> OpaquePointer? {
        guard let dns = evdns_base_new(base, 0) else { return nil }
        _ = evdns_base_resolv_conf_parse(dns, Int32(DNS_OPTION_SEARCH | DNS_OPTION_MISC | DNS_OPTION_HOSTSFILE), resolvConf)
        let text = (try? ConfigurationFile.readFile(resolvConf)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let first = firstNameserver(in: text) ?? "127.0.0.1"
        _ = evdns_base_nameserver_ip_add(dns, first)
        _ = evdns_base_set_option(dns, "randomize-case:", "0")
        return dns
    }

    static func firstNameserver(in text: String) -> String? {
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == "nameserver" { return String(fields[1]) }
        }
        return nil
    }
}
