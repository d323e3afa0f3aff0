import CLibevent

/// Reading a plain-TCP socket straight into an evbuffer. A bufferevent's read (`evbuffer_read`)
/// first asks the kernel how much is waiting (`ioctl(FIONREAD)`), then reads at most 4096 bytes;
/// this reserves space in the buffer and reads with one `readv`, as much as the caller allows,
/// without the ioctl (the kernel says how much it had by how much it gave).
enum SocketRead {
    enum Result {
        /// This many bytes were appended.
        case read(Int)
        case wouldBlock
        /// The peer closed its side.
        case endOfStream
        case failed
    }

    /// Appends at most `maximum` (> 0) bytes read from `fd` to `buffer`.
    /// A bufferevent's input has its end frozen (only the bufferevent adds to it); it is thawed
    /// for the read, as the bufferevent's own read does.
    static func read(_ fd: Int32, into buffer: OpaquePointer, maximum: Int) -> Result {
        evbuffer_unfreeze(buffer, 0)
        defer { evbuffer_freeze(buffer, 0) }
        // libevent's evbuffer_iovec is struct iovec where <sys/uio.h> exists.
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors in
            let v = vectors.baseAddress!
            let count = evbuffer_reserve_space(buffer, maximum, v, 2)
            guard count > 0 else { return .failed }
            var total = 0
            for i in 0..<Int(count) {
                if total + v[i].iov_len > maximum { v[i].iov_len = maximum - total }
                total += v[i].iov_len
            }
            var got = 0
            repeat {
                got = readv(fd, v, count)
            } while got < 0 && hg_errno() == EINTR
            guard got > 0 else {
                evbuffer_commit_space(buffer, v, 0)
                if got == 0 { return .endOfStream }
                let error = hg_errno()
                return error == EAGAIN || error == EWOULDBLOCK ? .wouldBlock : .failed
            }
            // Commit only what arrived: the first vector fully or in part, then the second.
            var left = got
            var used: Int32 = 0
            for i in 0..<Int(count) where left > 0 {
                v[i].iov_len = min(v[i].iov_len, left)
                left -= v[i].iov_len
                used += 1
            }
            guard evbuffer_commit_space(buffer, v, used) == 0 else { return .failed }
            return .read(got)
        }
    }
}
