/* The per-byte floor for bench/instructions: HMAC-SHA256 over a buffer with the same OpenSSL
 * calls hookgate makes (SHA256_Init/Update/Final, key pads precomputed), repeated `rounds`
 * times. Run under callgrind with rounds 0 and N; the difference over N x bytes is the cost
 * per body byte.
 *
 *   hmac_floor BYTES ROUNDS
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: hmac_floor BYTES ROUNDS\n"); return 2; }
    size_t n = strtoul(argv[1], NULL, 10);
    long rounds = strtol(argv[2], NULL, 10);
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)('a' + i % 26);
    unsigned char key[54], ipad[64], opad[64], digest[32], acc = 0;
    memset(key, 'k', sizeof key);
    memset(ipad, 0x36, 64); memset(opad, 0x5c, 64);
    for (size_t i = 0; i < sizeof key; i++) { ipad[i] ^= key[i]; opad[i] ^= key[i]; }
    SHA256_CTX inner, outer;
    SHA256_Init(&inner); SHA256_Update(&inner, ipad, 64);
    SHA256_Init(&outer); SHA256_Update(&outer, opad, 64);
    for (long r = 0; r < rounds; r++) {
        SHA256_CTX c = inner, o = outer;
        SHA256_Update(&c, "1700000000.", 11);
        SHA256_Update(&c, buf, n);
        SHA256_Final(digest, &c);
        SHA256_Update(&o, digest, 32);
        SHA256_Final(digest, &o);
        acc ^= digest[0];
    }
    printf("%u\n", acc);  /* keeps the loop from being optimised away */
    free(buf);
    return 0;
}
