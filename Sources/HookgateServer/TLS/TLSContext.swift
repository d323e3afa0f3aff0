import CLibevent
import HookgateCore

/// OpenSSL contexts for the HTTPS listener and for `https://` upstreams. A context is shared by
/// the connections made from it (OpenSSL reference-counts it) and freed with its last user.
/// Sendable: an `SSL_CTX` is not changed after it is built, and OpenSSL allows one to be used by
/// many threads at once (sessions are made from it under its own locks).
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer

    private init(_ context: OpaquePointer) { self.context = context }
    deinit { SSL_CTX_free(context) }

    /// The most recent OpenSSL error as text, clearing the error queue.
    static func lastError() -> String {
        var text = ""
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        return text.isEmpty ? "unknown OpenSSL error" : text
    }

    /// An OpenSSL error code as text.
    static func describe(_ code: UInt) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    private static func hardened(_ method: OpaquePointer) -> OpaquePointer? {
        guard let ctx = SSL_CTX_new(method) else { return nil }
        _ = hg_ssl_ctx_set_min_tls12(ctx)
        SSL_CTX_set_options(ctx, UInt64(hg_ssl_op_no_compression()))
        // TLS 1.3 suites are OpenSSL's defaults; for 1.2 only forward-secret AEAD suites.
        SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20")
        return ctx
    }

    /// The listener's context: certificate chain and key from PEM files, session resumption on
    /// (server-side cache and tickets, OpenSSL's defaults). Problems name the configuration key.
    static func server(_ files: TLSFiles) -> Result<TLSContext, ConfigurationProblems> {
        guard let ctx = hardened(TLS_server_method()) else {
            return .failure(.init(problems: [.init(key: "listen.tls", message: lastError())]))
        }
        let context = TLSContext(ctx)
        SSL_CTX_set_options(ctx, UInt64(hg_ssl_op_cipher_server_preference()))
        _ = hg_ssl_ctx_set_session_cache_server(ctx)
        let sessionID: [UInt8] = Array("hookgate".utf8)
        SSL_CTX_set_session_id_context(ctx, sessionID, UInt32(sessionID.count))
        guard SSL_CTX_use_certificate_chain_file(ctx, files.certificate) == 1 else {
            return .failure(.init(problems: [.init(key: "listen.tls.cert", message: "cannot use \(files.certificate): \(lastError())")]))
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, files.key, SSL_FILETYPE_PEM) == 1 else {
            return .failure(.init(problems: [.init(key: "listen.tls.key", message: "cannot use \(files.key): \(lastError())")]))
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            return .failure(.init(problems: [.init(key: "listen.tls.key", message: "the key does not match the certificate in \(files.certificate)")]))
        }
        return .success(context)
    }

    /// When the certificate this context presents expires (Unix seconds), if it has one.
    func certificateNotAfter() -> Double? {
        guard let certificate = SSL_CTX_get0_certificate(context), let notAfter = X509_get0_notAfter(certificate) else { return nil }
        var time = tm()
        guard ASN1_TIME_to_tm(notAfter, &time) == 1 else { return nil }
        return Double(timegm(&time))
    }

    /// A context for connections to an upstream: verifies the peer against the system store or
    /// `ca_file`, unless verification is switched off.
    static func client(_ upstream: Configuration.Upstream, key: String) -> Result<TLSContext, ConfigurationProblems> {
        client(caFile: upstream.caFile, insecureSkipVerify: upstream.tlsInsecureSkipVerify, key: key)
    }

    /// A client context from the settings upstreams and `ledger.redis` share.
    static func client(caFile: String?, insecureSkipVerify: Bool, key: String) -> Result<TLSContext, ConfigurationProblems> {
        guard let ctx = hardened(TLS_client_method()) else {
            return .failure(.init(problems: [.init(key: key, message: lastError())]))
        }
        let context = TLSContext(ctx)
        if insecureSkipVerify {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if let ca = caFile {
                guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                    return .failure(.init(problems: [.init(key: "\(key).ca_file", message: "cannot load \(ca): \(lastError())")]))
                }
            } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                return .failure(.init(problems: [.init(key: key, message: "cannot load the system CA store: \(lastError())")]))
            }
        }
        return .success(context)
    }

    /// A new client session for `host`: SNI always; host name (or IP) verification unless off.
    func clientSession(host: String, verify: Bool) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        if !isAddress { _ = hg_ssl_set_sni(ssl, host) }
        if verify {
            if isAddress {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
            } else {
                SSL_set1_host(ssl, host)
            }
        }
        return ssl
    }
}
