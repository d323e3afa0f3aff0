import CLibevent

/// Writing on a plain-TCP bufferevent without going through its write path for every message.
/// libevent would add the write event (epoll_ctl), wait a loop turn for writability, write, and
/// remove the event again (epoll_ctl). When nothing is queued ahead, the message goes out now with
/// one writev; only what the socket does not take is queued on the bufferevent, which then
/// carries on as usual (and reports a failed socket through its event callback).
enum SocketWrite {
    /// Sends `head` then `body` (drained: sent or moved to the queue). `direct` false (TLS, a
    /// connection still being set up) always queues. Returns whether everything went out now.
    static func send(head: UnsafeRawBufferPointer, body: OpaquePointer?, on bev: OpaquePointer, direct: Bool) -> Bool {
        let output = bufferevent_get_output(bev)!
        var headSent = 0
        if direct, evbuffer_get_length(output) == 0 {
            let fd = Int32(bufferevent_getfd(bev))
            if fd >= 0 {
                let maximumSegments = 8
                withUnsafeTemporaryAllocation(of: iovec.self, capacity: maximumSegments + 1) { vectors in
                    let v = vectors.baseAddress!
                    v[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count)
                    var used = 1
                    if let body, evbuffer_get_length(body) > 0 {
                        // Segments beyond the first few are queued below.
                        used += min(Int(evbuffer_peek(body, -1, nil, v + 1, Int32(maximumSegments))), maximumSegments)
                    }
                    var written = 0
                    repeat { written = writev(fd, v, Int32(used)) } while written < 0 && hg_errno() == EINTR
                    guard written > 0 else { return }  // EAGAIN, or an error the bufferevent will report
                    headSent = min(written, head.count)
                    if written > headSent, let body { evbuffer_drain(body, written - headSent) }
                }
            }
        }
        if headSent < head.count { evbuffer_add(output, head.baseAddress! + headSent, head.count - headSent) }
        if let body, evbuffer_get_length(body) > 0 { evbuffer_add_buffer(output, body) }
        return evbuffer_get_length(output) == 0
    }
}
