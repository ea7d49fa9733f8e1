//! rustls glue: [`EkuClientVerifier`] checks inbound client certificates with
//! the EKU policy of [`crate::certs::verify::eku`] (the configured mode, or "always require
//! clientAuth" for the tunnel listener); [`server_verifier`] checks outbound
//! peers' server certificates against the same trusted CA list.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::certs::verify::eku::{
    check_presented, ChainInfo, EkuError, EkuMode, Revocation, Role, ALGORITHMS,
};
use crate::certs::x509::anchors::TrustAnchors;
use crate::certs::x509::error::CertError;
use crate::certs::x509::info::Presented;

/// A `ClientCertVerifier` applying the EKU checking mode. Client
/// authentication is mandatory; the CertificateRequest carries the trusted
/// CA subjects as hints.
///
/// On rejection the handshake fails with
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` whose
/// text is the precise [`EkuError`] message (see [`ClientCertRejected`]); use
/// [`eku_error_of`] to get the variant.
#[derive(Debug, Clone)]
pub struct EkuClientVerifier {
    anchors: Arc<TrustAnchors>,
    mode: EkuMode,
    role: Role,
    revocation: Option<Arc<Revocation>>,
    /// Whether the CertificateRequest names the trusted CAs (`SIP TLS Certificate CANames Mode`).
    ca_names: bool,
}

impl EkuClientVerifier {
    /// `always_require_client_auth` = the tunnel flavour (mode is then ignored).
    pub fn new(
        anchors: Arc<TrustAnchors>,
        mode: EkuMode,
        always_require_client_auth: bool,
    ) -> Self {
        let role = if always_require_client_auth {
            Role::Tunnel
        } else {
            Role::InboundClient
        };
        EkuClientVerifier {
            anchors,
            mode,
            role,
            revocation: None,
            ca_names: true,
        }
    }

    /// Leaves the trusted CA subjects out of the CertificateRequest when `on` is false: with
    /// 1,000 CAs the list costs CPU and kilobytes in every handshake.
    pub fn with_ca_names(mut self, on: bool) -> Self {
        self.ca_names = on;
        self
    }

    /// Also checks installed CRLs (`Revocation Checking Mode: On`).
    pub fn with_revocation(mut self, revocation: Option<Arc<Revocation>>) -> Self {
        self.revocation = revocation;
        self
    }

    /// Inbound SIP TLS listener with the configured mode.
    pub fn inbound(anchors: Arc<TrustAnchors>, mode: EkuMode) -> Self {
        Self::new(anchors, mode, false)
    }

    /// SSH tunnel listener: always requires clientAuth.
    pub fn tunnel(anchors: Arc<TrustAnchors>) -> Self {
        Self::new(anchors, EkuMode::On, true)
    }

    /// The configured mode.
    pub fn mode(&self) -> EkuMode {
        self.mode
    }

    /// The listener role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The decision on a presented chain, with the leaf's fields as read for it (`None` when
    /// the leaf does not parse): what a listener logs for this connection.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> (Option<Presented>, Result<ChainInfo, EkuError>) {
        let presented = Presented::parse(end_entity.as_ref()).ok();
        let result = check_presented(
            self.role,
            end_entity,
            presented.as_ref(),
            intermediates,
            &self.anchors,
            self.mode,
            now,
            self.revocation.as_deref(),
        );
        (presented, result)
    }

    /// The error handed to rustls for a refusal `e`: its variant decides the alert the peer
    /// receives, so a peer learns whether its certificate's purpose (`unsupported_certificate`),
    /// its issuer (`unknown_ca`) or its validity (`certificate_expired`) was refused. Refusals
    /// with no closer variant carry `e` itself (see [`eku_error_of`]).
    pub fn rejection(e: EkuError) -> rustls::Error {
        use CertificateError as C;
        let variant = match &e {
            e if e.is_eku_policy() => C::InvalidPurpose,
            EkuError::Expired { .. } => C::Expired,
            EkuError::NotYetValid { .. } => C::NotValidYet,
            EkuError::UntrustedIssuer { .. } | EkuError::NoTrustAnchors => C::UnknownIssuer,
            EkuError::BadSignature { .. } => C::BadSignature,
            EkuError::Revoked { .. } => C::Revoked,
            EkuError::RevocationUnknown { .. } => C::UnknownRevocationStatus,
            _ => C::Other(OtherError(Arc::new(ClientCertRejected(e)))),
        };
        rustls::Error::InvalidCertificate(variant)
    }
}

/// The error placed in `CertificateError::Other` on rejection. Its `Debug`
/// is the plain message, because rustls renders `Other` with `{:?}`: the
/// handshake error then reads
/// `invalid peer certificate: Other(OtherError(client certificate 'CN=..' lacks clientAuth EKU ...))`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertRejected(pub EkuError);

impl std::fmt::Debug for ClientCertRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Display for ClientCertRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ClientCertRejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The [`EkuError`] carried by a rustls error produced by [`EkuClientVerifier`].
pub fn eku_error_of(err: &rustls::Error) -> Option<&EkuError> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<ClientCertRejected>().map(|r| &r.0)
        }
        _ => None,
    }
}

impl ClientCertVerifier for EkuClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        if self.ca_names {
            self.anchors.root_hint_subjects()
        } else {
            &[]
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, now).1 {
            Ok(info) => {
                tracing::debug!(subject = %info.subject, mode = %info.mode, "client certificate accepted");
                Ok(ClientCertVerified::assertion())
            }
            Err(e) => {
                tracing::debug!(code = e.code(), "client certificate rejected: {e}");
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(ClientCertRejected(e))),
                )))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &ALGORITHMS)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &ALGORITHMS)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ALGORITHMS.supported_schemes()
    }
}

/// A server-certificate verifier for outbound peers (rustls' WebPKI verifier
/// over the trusted CA list, ring provider, serverAuth required if present).
pub fn server_verifier(anchors: &TrustAnchors) -> Result<Arc<dyn ServerCertVerifier>, CertError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let v = WebPkiServerVerifier::builder_with_provider(Arc::new(anchors.root_store()), provider)
        .build()
        .map_err(|e| CertError::Verifier(e.to_string().to_lowercase()))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::info::parse_pem_certs;
    use crate::certs::pki::{LeafEku, LeafSpec, TestCa};

    #[test]
    fn rejection_carries_precise_reason() {
        let ca = TestCa::private_ca1().unwrap();
        let anchors = Arc::new(TrustAnchors::from_pem(ca.root_pem().as_bytes()).unwrap());
        let leaf = ca
            .issue(&LeafSpec::new("peer", LeafEku::ServerAuth))
            .unwrap();
        let chain = parse_pem_certs(leaf.chain_pem.as_bytes()).unwrap();
        let v = EkuClientVerifier::inbound(anchors.clone(), EkuMode::On);
        assert!(v.client_auth_mandatory());
        assert_eq!(v.root_hint_subjects().len(), 1);
        let err = v
            .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
            .unwrap_err();
        assert!(err.to_string().contains("lacks clientAuth EKU"), "{err}");
        assert_eq!(eku_error_of(&err).unwrap().code(), "leaf-lacks-client-auth");
        let off = EkuClientVerifier::inbound(anchors.clone(), EkuMode::Off);
        assert!(off
            .verify_client_cert(&chain[0], &[], UnixTime::now())
            .is_ok());
        let tunnel = EkuClientVerifier::tunnel(anchors.clone());
        assert!(tunnel
            .verify_client_cert(&chain[0], &[], UnixTime::now())
            .is_err());
        assert!(server_verifier(&anchors).is_ok());
        let quiet = EkuClientVerifier::inbound(anchors.clone(), EkuMode::On).with_ca_names(false);
        assert!(quiet.root_hint_subjects().is_empty());
    }

    /// No EKU extension = any purpose: accepted in On, Off and by the tunnel.
    #[test]
    fn certificate_without_eku_is_accepted_in_every_mode() {
        let ca = TestCa::private_ca1().unwrap();
        let anchors = Arc::new(TrustAnchors::from_pem(ca.root_pem().as_bytes()).unwrap());
        let leaf = ca.issue(&LeafSpec::new("any", LeafEku::None)).unwrap();
        let chain = parse_pem_certs(leaf.chain_pem.as_bytes()).unwrap();
        for v in [
            EkuClientVerifier::inbound(anchors.clone(), EkuMode::On),
            EkuClientVerifier::inbound(anchors.clone(), EkuMode::Off),
            EkuClientVerifier::tunnel(anchors.clone()),
        ] {
            let r = v.verify_client_cert(&chain[0], &chain[1..], UnixTime::now());
            assert!(r.is_ok(), "{:?} {:?}: {r:?}", v.role(), v.mode());
        }
    }
}
