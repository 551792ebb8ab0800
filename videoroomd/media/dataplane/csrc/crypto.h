/* The few OpenSSL functions the SRTP code uses, reached at run time.
 *
 * libcrypto.so.3 is opened with dlopen and the functions looked up by name,
 * so that building the module needs neither OpenSSL's headers nor its
 * development symlink: a fresh machine has the runtime library (Python's own
 * ssl module links it) but not libssl-dev. The prototypes below are OpenSSL
 * 3's public ABI; the types stay opaque. */
#ifndef VR_CRYPTO_H
#define VR_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

typedef struct vr_cipher vr_cipher;   /* EVP_CIPHER_CTX */
typedef struct vr_hmac vr_hmac;       /* HMAC_CTX */

/* Load libcrypto once; returns NULL when ready, else why it is not. */
const char *vr_crypto_load(void);
const char *vr_crypto_error(void);

/* AES-128 or AES-256 (key_len 16 or 32) in counter mode with a fixed key; NULL when refused. */
vr_cipher *vr_aes_ctr_new(const uint8_t *key, size_t key_len);
void vr_cipher_free(vr_cipher *c);
/* out = in XOR keystream(iv); in and out may be the same buffer. 0 on success. */
int vr_aes_ctr_xor(vr_cipher *c, const uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t len);

/* AES-GCM (key_len 16 or 32) with a fixed key, for sealing (encrypt) or opening (decrypt); 12-byte IVs,
 * 16-byte tags. The AAD is aad1 || aad2. open answers 0 when the tag matches, 1 when not, -1 on failure. */
vr_cipher *vr_aes_gcm_new(const uint8_t *key, size_t key_len, int seal);
int vr_aes_gcm_seal(vr_cipher *c, const uint8_t iv[12], const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                    size_t aad2_len, const uint8_t *in, uint8_t *out, size_t len, uint8_t tag[16]);
int vr_aes_gcm_open(vr_cipher *c, const uint8_t iv[12], const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                    size_t aad2_len, const uint8_t *in, uint8_t *out, size_t len, const uint8_t tag[16]);

/* HMAC-SHA1 with a fixed key; the key's pads are computed once. */
vr_hmac *vr_hmac_sha1_new(const uint8_t *key, size_t key_len);
void vr_hmac_free(vr_hmac *h);
/* tag (20 bytes) = HMAC(part1 || part2). 0 on success. */
int vr_hmac_sha1(vr_hmac *h, const uint8_t *part1, size_t len1, const uint8_t *part2, size_t len2,
                 uint8_t tag[20]);

#endif
