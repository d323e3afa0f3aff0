#ifndef HOOKGATE_CLIBEVENT_SHIM_H
#define HOOKGATE_CLIBEVENT_SHIM_H
/* libevent as Swift sees it. Macros and struct walks become tiny inline functions; no logic. */
/* OpenSSL is included here, not through a second module, because two Clang modules that both
   pull in glibc's headers clash over their definitions (fd_set). */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <event2/dns.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <time.h>
#include <strings.h>
#include <errno.h>
#include <sys/uio.h>
#include <sys/inotify.h>
#include <sys/resource.h>

static inline struct evkeyval *hg_headers_first(struct evkeyvalq *headers) { return headers->tqh_first; }
static inline struct evkeyval *hg_headers_next(struct evkeyval *header) { return header->next.tqe_next; }

static inline int hg_errno(void) { return errno; }
static inline long long hg_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static inline long long hg_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline long hg_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline long hg_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
static inline unsigned long hg_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline unsigned long hg_ssl_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline long hg_ssl_ctx_set_session_cache_server(SSL_CTX *ctx) { return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER); }
static inline int hg_getrlimit_nofile(struct rlimit *limit) { return getrlimit(RLIMIT_NOFILE, limit); }
static inline int hg_setrlimit_nofile(const struct rlimit *limit) { return setrlimit(RLIMIT_NOFILE, limit); }
#endif
