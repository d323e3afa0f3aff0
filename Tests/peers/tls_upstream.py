#!/usr/bin/env python3
"""The recording upstream (upstream.py) served over HTTPS, for hookgate's https:// upstream tests.

    python3 tls_upstream.py --port N --tls-cert CERT.pem --tls-key KEY.pem   # N = 0 picks a free port

Same handler, records, modes and ``/_control/*`` API as upstream.py (the control API is HTTPS
too), and the same ``READY <port>`` line. The TLS handshake runs in the connection's own thread,
so a client that fails or never finishes it blocks nobody; a failed handshake records nothing.
"""
import argparse
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import upstream  # noqa: E402  (Tests/peers/upstream.py)


class TLSServer(upstream.Server):
    ssl_context = None

    def finish_request(self, request, client_address):
        try:
            request.settimeout(10)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError, ValueError):
            return  # the raw socket is closed by shutdown_request
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-cert", required=True)
    ap.add_argument("--tls-key", required=True)
    args = ap.parse_args(argv)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    TLSServer.ssl_context = ctx
    upstream.serve(TLSServer((args.host, args.port), upstream.Handler))


if __name__ == "__main__":
    main()
