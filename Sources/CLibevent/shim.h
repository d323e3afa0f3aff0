#ifndef HOOKGATE_CLIBEVENT_SHIM_H
#define HOOKGATE_CLIBEVENT_SHIM_H
/* libevent as Swift sees it. Macros and struct walks become tiny inline functions; no logic. */
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
#include <arpa/inet.h>
#include <signal.h>
#include <time.h>
#include <strings.h>
#include <sys/uio.h>

static inline struct evkeyval *hg_headers_first(struct evkeyvalq *headers) { return headers->tqh_first; }
static inline struct evkeyval *hg_headers_next(struct evkeyval *header) { return header->next.tqe_next; }

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
#endif
