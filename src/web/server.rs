//! The accept loop: TLS with the configuration of the moment, then HTTP/1.1 or HTTP/2 (ALPN).
