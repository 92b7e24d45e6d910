//! The process-wide RS256 signing key. Generated once (RSA-2048 is slow to make,
//! so every world shares it); worlds differ by tenant and issuer, which is what
//! makes a token from one world fail in another.

use std::sync::OnceLock;

use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};

pub(crate) struct SigningKey {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// base64url modulus and exponent for the JWKS document.
    pub n: String,
    pub e: String,
    /// Key id. Entra uses the same 27-character value for `kid` and `x5t`
    /// (base64url of a 20-byte SHA-1 certificate thumbprint). There is no
    /// certificate here, so it is the first 20 bytes of SHA-256 over the modulus:
    /// same length and alphabet, stable for the process.
    pub kid: String,
}

static KEY: OnceLock<SigningKey> = OnceLock::new();

pub(crate) fn signing_key() -> &'static SigningKey {
    KEY.get_or_init(|| {
        let mut rng = rand::rngs::OsRng;
        // Key generation can only fail on an RNG failure; there is nothing to do then.
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
        let der = private.to_pkcs1_der().expect("PKCS#1 encoding");
        let n_bytes = private.n().to_bytes_be();
        let e_bytes = private.e().to_bytes_be();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let digest = Sha256::digest(&n_bytes);
        SigningKey {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&n_bytes, &e_bytes),
            n: b64.encode(&n_bytes),
            e: b64.encode(&e_bytes),
            kid: b64.encode(&digest[..20]),
        }
    })
}
