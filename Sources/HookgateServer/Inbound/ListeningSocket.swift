import CLibevent
import Foundation
import HookgateCore

/// Opens non-blocking listening sockets for a `listen` address.
enum ListeningSocket {
    /// Fails if another socket holds `address`: binds without SO_REUSEPORT, then closes. The
    /// workers bind with SO_REUSEPORT, which would otherwise join another process's port silently.
    static func probe(_ address: ListenAddress) throws {
        close(try bound(address, reusePort: false))
    }

    static func open(_ address: ListenAddress, reusePort: Bool) throws -> Int32 {
        let fd = try bound(address, reusePort: reusePort)
        guard Foundation.listen(fd, 1024) == 0 else {
            let error = SystemError("listen on \(address)")
            close(fd)
            throw error
        }
        return fd
    }

    private static func bound(_ address: ListenAddress, reusePort: Bool) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &result)
        guard rc == 0, let info = result else {
            throw SystemError("cannot resolve listen address \(address): \(String(cString: gai_strerror(rc)))", errno: 0)
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        // Accepted sockets inherit TCP_NODELAY on Linux: answers leave without waiting on Nagle.
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let error = errno == EADDRINUSE
                ? SystemError("cannot listen on \(address): another process is listening on it (address already in use)", errno: 0)
                : SystemError("cannot listen on \(address)")
            close(fd)
            throw error
        }
        return fd
    }

    static func port(of fd: Int32) throws -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { throw SystemError("getsockname") }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
        default:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
        }
    }
}
