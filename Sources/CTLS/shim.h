#ifndef AIRLOCK_CTLS_SHIM_H
#define AIRLOCK_CTLS_SHIM_H
// The only door to OpenSSL (Debian's libssl-dev): Swift code imports this module from exactly one
// file (Sources/AirlockRedisClient/Connection/TLSStream.swift). OpenSSL spells several calls as
// macros, which Swift cannot call; each one used is wrapped below as a static inline function.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/// A client context: TLS 1.2 or newer, the peer verified unless the caller turns it off.
static inline SSL_CTX *airlock_tls_client_context(void) {
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (context == NULL) return NULL;
    if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1) {
        SSL_CTX_free(context);
        return NULL;
    }
    // A read that meets a non-application record (a TLS 1.3 session ticket) carries on reading
    // instead of returning "want read" on a blocking socket.
    SSL_CTX_set_mode(context, SSL_MODE_AUTO_RETRY);
    // RESP is length-prefixed, so a truncation attack cannot pass a short reply off as whole; a
    // peer that died without close_notify (kill -9, a failover) is then a plain end of stream.
    SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return context;
}

/// SNI (`SSL_set_tlsext_host_name` is a macro).
static inline int airlock_tls_set_server_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/// Checks the certificate against an IP address (SSL_set1_host matches DNS names only).
static inline int airlock_tls_expect_ip(SSL *ssl, const char *address) {
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address);
}

/// The reason part of an OpenSSL error code.
static inline int airlock_tls_error_reason(unsigned long code) {
    return ERR_GET_REASON(code);
}

#endif
