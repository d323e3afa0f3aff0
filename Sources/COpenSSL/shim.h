#ifndef HOOKGATE_COPENSSL_SHIM_H
#define HOOKGATE_COPENSSL_SHIM_H
/* The SHA256_* block API is deprecated in OpenSSL 3 but remains the cheapest way to keep
   precomputed HMAC pad states as plain structs that are copied, not allocated, per request. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#endif
