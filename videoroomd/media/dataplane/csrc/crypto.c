/* OpenSSL's EVP AES-CTR and HMAC-SHA1, looked up in libcrypto.so.3 at run time (see crypto.h). */
#define _POSIX_C_SOURCE 200809L
#include "crypto.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;

static struct {
    int tried;
    const char *error;
    char message[256];
    vr_cipher *(*cipher_ctx_new)(void);
    void (*cipher_ctx_free)(vr_cipher *);
    const EVP_CIPHER *(*aes_128_ctr)(void);
    const EVP_CIPHER *(*aes_256_ctr)(void);
    const EVP_CIPHER *(*aes_128_gcm)(void);
    const EVP_CIPHER *(*aes_256_gcm)(void);
    int (*encrypt_init_ex)(vr_cipher *, const EVP_CIPHER *, ENGINE *, const uint8_t *, const uint8_t *);
    int (*encrypt_update)(vr_cipher *, uint8_t *, int *, const uint8_t *, int);
    int (*encrypt_final_ex)(vr_cipher *, uint8_t *, int *);
    int (*decrypt_init_ex)(vr_cipher *, const EVP_CIPHER *, ENGINE *, const uint8_t *, const uint8_t *);
    int (*decrypt_update)(vr_cipher *, uint8_t *, int *, const uint8_t *, int);
    int (*decrypt_final_ex)(vr_cipher *, uint8_t *, int *);
    int (*cipher_ctx_ctrl)(vr_cipher *, int, int, void *);
    vr_hmac *(*hmac_ctx_new)(void);
    void (*hmac_ctx_free)(vr_hmac *);
    const EVP_MD *(*sha1)(void);
    int (*hmac_init_ex)(vr_hmac *, const void *, int, const EVP_MD *, ENGINE *);
    int (*hmac_update)(vr_hmac *, const uint8_t *, size_t);
    int (*hmac_final)(vr_hmac *, uint8_t *, unsigned int *);
} ossl;

/* Candidates in order: the soname of OpenSSL 3, then whatever copy the process already holds. */
static const char *const LIBRARIES[] = {"libcrypto.so.3", "libcrypto.so"};

#define LOOKUP(handle, field, name)                                                  \
    do {                                                                             \
        *(void **)(&ossl.field) = dlsym(handle, name);                               \
        if (!ossl.field) {                                                           \
            snprintf(ossl.message, sizeof ossl.message, "%s lacks %s", path, name);  \
            return ossl.message;                                                     \
        }                                                                            \
    } while (0)

static const char *bind_all(void *handle, const char *path) {
    LOOKUP(handle, cipher_ctx_new, "EVP_CIPHER_CTX_new");
    LOOKUP(handle, cipher_ctx_free, "EVP_CIPHER_CTX_free");
    LOOKUP(handle, aes_128_ctr, "EVP_aes_128_ctr");
    LOOKUP(handle, aes_256_ctr, "EVP_aes_256_ctr");
    LOOKUP(handle, aes_128_gcm, "EVP_aes_128_gcm");
    LOOKUP(handle, aes_256_gcm, "EVP_aes_256_gcm");
    LOOKUP(handle, encrypt_init_ex, "EVP_EncryptInit_ex");
    LOOKUP(handle, encrypt_update, "EVP_EncryptUpdate");
    LOOKUP(handle, encrypt_final_ex, "EVP_EncryptFinal_ex");
    LOOKUP(handle, decrypt_init_ex, "EVP_DecryptInit_ex");
    LOOKUP(handle, decrypt_update, "EVP_DecryptUpdate");
    LOOKUP(handle, decrypt_final_ex, "EVP_DecryptFinal_ex");
    LOOKUP(handle, cipher_ctx_ctrl, "EVP_CIPHER_CTX_ctrl");
    LOOKUP(handle, hmac_ctx_new, "HMAC_CTX_new");
    LOOKUP(handle, hmac_ctx_free, "HMAC_CTX_free");
    LOOKUP(handle, sha1, "EVP_sha1");
    LOOKUP(handle, hmac_init_ex, "HMAC_Init_ex");
    LOOKUP(handle, hmac_update, "HMAC_Update");
    LOOKUP(handle, hmac_final, "HMAC_Final");
    return NULL;
}

const char *vr_crypto_load(void) {
    if (ossl.tried)
        return ossl.error;
    ossl.tried = 1;
    for (size_t i = 0; i < sizeof LIBRARIES / sizeof LIBRARIES[0]; i++) {
        void *handle = dlopen(LIBRARIES[i], RTLD_NOW | RTLD_LOCAL);
        if (!handle)
            continue;
        ossl.error = bind_all(handle, LIBRARIES[i]);
        if (!ossl.error)
            return NULL;
        dlclose(handle);
    }
    if (!ossl.error) {
        snprintf(ossl.message, sizeof ossl.message,
                 "OpenSSL's libcrypto.so.3 cannot be loaded (install the libssl3 package)");
        ossl.error = ossl.message;
    }
    return ossl.error;
}

const char *vr_crypto_error(void) { return vr_crypto_load(); }

vr_cipher *vr_aes_ctr_new(const uint8_t *key, size_t key_len) {
    if (vr_crypto_load() || (key_len != 16 && key_len != 32))
        return NULL;
    vr_cipher *c = ossl.cipher_ctx_new();
    if (!c)
        return NULL;
    if (ossl.encrypt_init_ex(c, key_len == 16 ? ossl.aes_128_ctr() : ossl.aes_256_ctr(), NULL, key, NULL) != 1) {
        ossl.cipher_ctx_free(c);
        return NULL;
    }
    return c;
}

void vr_cipher_free(vr_cipher *c) {
    if (c)
        ossl.cipher_ctx_free(c);
}

int vr_aes_ctr_xor(vr_cipher *c, const uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t len) {
    int written = 0;
    if (len > INT_MAX)
        return -1;
    if (ossl.encrypt_init_ex(c, NULL, NULL, NULL, iv) != 1)
        return -1;
    if (len == 0)
        return 0;
    return ossl.encrypt_update(c, out, &written, in, (int)len) == 1 && (size_t)written == len ? 0 : -1;
}

/* OpenSSL's EVP_CTRL_AEAD_GET_TAG and EVP_CTRL_AEAD_SET_TAG. */
#define CTRL_GET_TAG 0x10
#define CTRL_SET_TAG 0x11

vr_cipher *vr_aes_gcm_new(const uint8_t *key, size_t key_len, int seal) {
    if (vr_crypto_load() || (key_len != 16 && key_len != 32))
        return NULL;
    vr_cipher *c = ossl.cipher_ctx_new();
    if (!c)
        return NULL;
    const EVP_CIPHER *cipher = key_len == 16 ? ossl.aes_128_gcm() : ossl.aes_256_gcm();
    int ok = seal ? ossl.encrypt_init_ex(c, cipher, NULL, key, NULL) : ossl.decrypt_init_ex(c, cipher, NULL, key, NULL);
    if (ok != 1) {
        ossl.cipher_ctx_free(c);
        return NULL;
    }
    return c;
}

static int gcm_aad(vr_cipher *c, int seal, const uint8_t *aad, size_t len) {
    int written = 0;
    if (!len)
        return 0;
    if (len > INT_MAX)
        return -1;
    int ok = seal ? ossl.encrypt_update(c, NULL, &written, aad, (int)len)
                  : ossl.decrypt_update(c, NULL, &written, aad, (int)len);
    return ok == 1 ? 0 : -1;
}

int vr_aes_gcm_seal(vr_cipher *c, const uint8_t iv[12], const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                    size_t aad2_len, const uint8_t *in, uint8_t *out, size_t len, uint8_t tag[16]) {
    int written = 0, last = 0;
    if (len > INT_MAX || ossl.encrypt_init_ex(c, NULL, NULL, NULL, iv) != 1 || gcm_aad(c, 1, aad1, aad1_len) ||
        gcm_aad(c, 1, aad2, aad2_len))
        return -1;
    if (len && (ossl.encrypt_update(c, out, &written, in, (int)len) != 1 || (size_t)written != len))
        return -1;
    uint8_t none[16]; /* GCM's final step writes nothing; it gets a place anyway */
    if (ossl.encrypt_final_ex(c, none, &last) != 1 || last != 0)
        return -1;
    return ossl.cipher_ctx_ctrl(c, CTRL_GET_TAG, 16, tag) == 1 ? 0 : -1;
}

int vr_aes_gcm_open(vr_cipher *c, const uint8_t iv[12], const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2,
                    size_t aad2_len, const uint8_t *in, uint8_t *out, size_t len, const uint8_t tag[16]) {
    int written = 0, last = 0;
    uint8_t expected[16];
    memcpy(expected, tag, 16); /* the control call takes a non-const pointer */
    if (len > INT_MAX || ossl.decrypt_init_ex(c, NULL, NULL, NULL, iv) != 1 || gcm_aad(c, 0, aad1, aad1_len) ||
        gcm_aad(c, 0, aad2, aad2_len))
        return -1;
    if (len && (ossl.decrypt_update(c, out, &written, in, (int)len) != 1 || (size_t)written != len))
        return -1;
    if (ossl.cipher_ctx_ctrl(c, CTRL_SET_TAG, 16, expected) != 1)
        return -1;
    uint8_t none[16];
    return ossl.decrypt_final_ex(c, none, &last) == 1 ? 0 : 1;
}

vr_hmac *vr_hmac_sha1_new(const uint8_t *key, size_t key_len) {
    if (vr_crypto_load() || key_len > INT_MAX)
        return NULL;
    vr_hmac *h = ossl.hmac_ctx_new();
    if (!h)
        return NULL;
    if (ossl.hmac_init_ex(h, key, (int)key_len, ossl.sha1(), NULL) != 1) {
        ossl.hmac_ctx_free(h);
        return NULL;
    }
    return h;
}

void vr_hmac_free(vr_hmac *h) {
    if (h)
        ossl.hmac_ctx_free(h);
}

int vr_hmac_sha1(vr_hmac *h, const uint8_t *part1, size_t len1, const uint8_t *part2, size_t len2,
                 uint8_t tag[20]) {
    unsigned int out_len = 0;
    /* A NULL key and digest restart from the pads computed when the key was set. */
    if (ossl.hmac_init_ex(h, NULL, 0, NULL, NULL) != 1)
        return -1;
    if (len1 && ossl.hmac_update(h, part1, len1) != 1)
        return -1;
    if (len2 && ossl.hmac_update(h, part2, len2) != 1)
        return -1;
    return ossl.hmac_final(h, tag, &out_len) == 1 && out_len == 20 ? 0 : -1;
}
