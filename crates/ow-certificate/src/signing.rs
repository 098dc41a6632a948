//! Signing and verifying e-certificates: [`sign`], [`SignedCertificate`], [`CertificateTrust`].
//!
//! The signature is Ed25519 over the canonical bytes ([`canonical_bytes`]):
//! `onewindow-ecert-v1\n` followed by the compact JSON serialisation of the [`ECertificate`],
//! whose key order is fixed by the struct's field order. A verifier rebuilds those bytes from the
//! parsed certificate, so whitespace or key order in the received file does not matter, but
//! every value does. See `docs/e-certificate.md`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::document::{ECertificate, FORMAT};
use crate::error::CertificateError;

/// Domain-separation prefix of the signed bytes.
pub const SIGNATURE_CONTEXT: &[u8] = b"onewindow-ecert-v1\n";
/// Largest signed-certificate file [`SignedCertificate::from_json`] reads.
pub const MAX_SIGNED_JSON_BYTES: usize = 256 * 1024;

/// A certificate with the issuer's signature, stored and exchanged as JSON:
/// `{"certificate": {…}, "key_id": "…", "signature": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCertificate {
    /// The document.
    pub certificate: ECertificate,
    /// Key id of the signing key: the first 16 hex characters of BLAKE3 over the 32 bytes of the
    /// verifying key ([`key_id`]).
    pub key_id: String,
    /// The 64-byte Ed25519 signature in standard base64 with padding.
    pub signature: String,
}

/// The outer object before the certificate is parsed, so that the format can be checked first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigned {
    certificate: serde_json::Value,
    key_id: String,
    signature: String,
}

/// The bytes the signature covers: [`SIGNATURE_CONTEXT`] followed by the compact JSON of the
/// certificate (fields in declaration order, no whitespace, non-ASCII characters as UTF-8).
pub fn canonical_bytes(certificate: &ECertificate) -> Result<Vec<u8>, CertificateError> {
    let mut bytes = SIGNATURE_CONTEXT.to_vec();
    serde_json::to_writer(&mut bytes, certificate).map_err(|err| CertificateError::Serialize {
        reason: err.to_string(),
    })?;
    Ok(bytes)
}

/// The key id of a certificate verifying key: lowercase hex of the first 8 bytes of BLAKE3 over
/// its 32 bytes (the same as `ow_bundle::KeyId`).
pub fn key_id(key: &VerifyingKey) -> String {
    ow_bundle::KeyId::of(key).to_string()
}

/// Checks `certificate` ([`ECertificate::check`]) and signs it.
pub fn sign(
    certificate: &ECertificate,
    key: &SigningKey,
) -> Result<SignedCertificate, CertificateError> {
    certificate.check()?;
    let bytes = canonical_bytes(certificate)?;
    let signature = key.sign(&bytes);
    Ok(SignedCertificate {
        certificate: certificate.clone(),
        key_id: key_id(&key.verifying_key()),
        signature: STANDARD.encode(signature.to_bytes()),
    })
}

impl SignedCertificate {
    /// Parses a signed certificate file. Refuses input over [`MAX_SIGNED_JSON_BYTES`] before
    /// looking at it, then malformed JSON, an unknown `format`, and fields that do not parse.
    /// The result is not yet verified: call [`SignedCertificate::verify`].
    pub fn from_json(input: &[u8]) -> Result<Self, CertificateError> {
        if input.len() > MAX_SIGNED_JSON_BYTES {
            return Err(CertificateError::TooLarge {
                size: input.len(),
                limit: MAX_SIGNED_JSON_BYTES,
            });
        }
        let malformed = |err: serde_json::Error| CertificateError::Malformed {
            reason: err.to_string(),
        };
        let raw: RawSigned = serde_json::from_slice(input).map_err(malformed)?;
        match raw.certificate.get("format") {
            Some(serde_json::Value::String(format)) if format == FORMAT => {}
            Some(serde_json::Value::String(format)) => {
                return Err(CertificateError::UnknownFormat {
                    found: format.clone(),
                    expected: FORMAT,
                });
            }
            _ => {
                return Err(CertificateError::Malformed {
                    reason: "the certificate has no \"format\" string".into(),
                });
            }
        }
        let certificate: ECertificate =
            serde_json::from_value(raw.certificate).map_err(|err| CertificateError::Malformed {
                reason: format!("in \"certificate\": {err}"),
            })?;
        Ok(Self {
            certificate,
            key_id: raw.key_id,
            signature: raw.signature,
        })
    }

    /// The JSON file form (pretty-printed; any whitespace verifies the same).
    pub fn to_json(&self) -> Result<String, CertificateError> {
        serde_json::to_string_pretty(self).map_err(|err| CertificateError::Serialize {
            reason: err.to_string(),
        })
    }

    /// Verifies the signature with a trusted key and returns the certificate.
    ///
    /// Refuses an unknown format, a key id not in `trust`, a signature that is not 64 bytes of
    /// base64 or does not verify (strict Ed25519 verification), and a signed certificate whose
    /// content breaks [`ECertificate::check`].
    pub fn verify(&self, trust: &CertificateTrust) -> Result<&ECertificate, CertificateError> {
        if self.certificate.format != FORMAT {
            return Err(CertificateError::UnknownFormat {
                found: self.certificate.format.clone(),
                expected: FORMAT,
            });
        }
        let key = trust
            .get(&self.key_id)
            .ok_or_else(|| CertificateError::UnknownKey {
                key_id: self.key_id.clone(),
            })?;
        let raw = STANDARD.decode(self.signature.as_bytes()).map_err(|err| {
            CertificateError::BadSignature {
                reason: format!("the signature is not base64: {err}"),
            }
        })?;
        let raw: [u8; 64] =
            raw.try_into()
                .map_err(|raw: Vec<u8>| CertificateError::BadSignature {
                    reason: format!("the signature has {} bytes instead of 64", raw.len()),
                })?;
        let bytes = canonical_bytes(&self.certificate)?;
        key.verify_strict(&bytes, &Signature::from_bytes(&raw))
            .map_err(|_| CertificateError::BadSignature {
                reason: "Ed25519 verification failed".into(),
            })?;
        self.certificate.check()?;
        Ok(&self.certificate)
    }
}

/// The certificate verifying keys a zone trusts, by key id. Several keys may be trusted at once
/// so that certificates signed before a key rotation still verify.
#[derive(Debug, Clone, Default)]
pub struct CertificateTrust {
    keys: BTreeMap<String, VerifyingKey>,
}

impl CertificateTrust {
    /// No trusted keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts every key given.
    pub fn from_verifying_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut trust = Self::new();
        for key in keys {
            trust.add(key);
        }
        trust
    }

    /// Trusts one more key; returns its key id.
    pub fn add(&mut self, key: VerifyingKey) -> String {
        let id = key_id(&key);
        self.keys.insert(id.clone(), key);
        id
    }

    /// Trusts the public key in a `.pub` file written by [`crate::generate_key_file`]; returns
    /// its key id.
    pub fn add_key_file(&mut self, path: &Path) -> Result<String, CertificateError> {
        let key = crate::keyfile::load_verifying_key(path)?;
        Ok(self.add(key))
    }

    /// The key with this id, if trusted.
    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    /// The trusted key ids, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{fixed_key, sample, sample_in_shares};
    use ow_domain::{CertificateNumber, PersonName, Share, UnitCode};

    fn signed() -> (SignedCertificate, CertificateTrust) {
        let key = fixed_key();
        let signed = sign(&sample_in_shares(), &key).expect("sign");
        let trust = CertificateTrust::from_verifying_keys([key.verifying_key()]);
        (signed, trust)
    }

    #[test]
    fn round_trip_through_json() {
        let (signed, trust) = signed();
        assert_eq!(signed.key_id.len(), 16);
        assert_eq!(STANDARD.decode(&signed.signature).expect("b64").len(), 64);
        let json = signed.to_json().expect("json");
        let parsed = SignedCertificate::from_json(json.as_bytes()).expect("parse");
        assert_eq!(parsed, signed);
        assert_eq!(parsed.verify(&trust).expect("verify"), &sample_in_shares());
        // Compact JSON verifies as well: the signature covers values, not whitespace.
        let compact = serde_json::to_vec(&signed).expect("compact");
        let parsed = SignedCertificate::from_json(&compact).expect("parse compact");
        parsed.verify(&trust).expect("verify compact");
    }

    /// The vector quoted in `docs/e-certificate.md` §9: the sole-owner sample certificate signed
    /// with the key whose seed is the bytes 0x00 … 0x1f.
    #[test]
    fn golden_vector() {
        let key = fixed_key();
        assert_eq!(
            ow_bundle::encode_verifying_key(&key.verifying_key()),
            GOLDEN_PUBLIC_KEY
        );
        let bytes = canonical_bytes(&sample()).expect("bytes");
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        assert_eq!(text, format!("onewindow-ecert-v1\n{GOLDEN_JSON}"));
        let signed = sign(&sample(), &key).expect("sign");
        assert_eq!(signed.key_id, GOLDEN_KEY_ID);
        assert_eq!(signed.signature, GOLDEN_SIGNATURE);
    }

    const GOLDEN_PUBLIC_KEY: &str = "ow-ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    const GOLDEN_KEY_ID: &str = "98ba85304ac639f0";
    const GOLDEN_SIGNATURE: &str =
        "qN2KsQFG3UiV8RC2Jw53vWADRnVhBAaVn7p2jKxsYsXpT8h6iLKRDbsh511J5IqtXpgE1vNAMmX44Ddg9feOAw==";
    const GOLDEN_JSON: &str = r#"{"format":"onewindow-ecert/1","certificate_number":"鲁(2026)青州市不动产权第0000123号","license_id":"1.2.156.3005.2.11100000MB03271699001.370781.000000123.001.N","issuer":"青州市不动产登记中心","district_code":"370781","unit_code":"370781001001GB00001F00010101","location":"青州市云门山街道驼山路88号3号楼2单元101室","right_type":{"code":4,"name":"国有建设用地使用权/房屋（构筑物）所有权"},"right_nature":"出让/市场化商品房","registration_type":{"code":200,"name":"转移登记"},"use":"城镇住宅用地/成套住宅","area_m2":"89.50","use_term":"2010年01月01日起2080年12月31日止","holders":[{"name":"张小三","id_type":{"code":1,"name":"身份证"},"id_number":"370781199001012347","share":null}],"joint_ownership":{"code":0,"name":"单独所有"},"obligors":[],"recorded_at":"2026-03-02T09:30:00+08:00","issued_at":"2026-03-02T15:00:00+08:00","case_id":"2026030200123","verification_code":"7KQ4M-X9PTB","replaces":["鲁(2025)青州市不动产权第0000077号"],"notes":""}"#;

    #[test]
    fn canonical_bytes_start_with_the_context() {
        let bytes = canonical_bytes(&sample()).expect("bytes");
        assert!(bytes.starts_with(b"onewindow-ecert-v1\n{\"format\":\"onewindow-ecert/1\","));
        assert!(!bytes[SIGNATURE_CONTEXT.len()..].contains(&b'\n'));
    }

    #[test]
    fn key_id_matches_bundle_key_id() {
        let key = fixed_key().verifying_key();
        let expected = hex::encode(&blake3::hash(key.as_bytes()).as_bytes()[..8]);
        assert_eq!(key_id(&key), expected);
    }

    fn assert_tampering_fails(change: impl Fn(&mut ECertificate)) {
        let (signed, trust) = signed();
        let mut tampered = signed.clone();
        change(&mut tampered.certificate);
        assert_ne!(tampered, signed, "the change must change something");
        let err = tampered.verify(&trust).expect_err("tampered");
        assert!(
            matches!(err, CertificateError::BadSignature { .. }),
            "{err}"
        );
        // Through the JSON file too.
        let json = tampered.to_json().expect("json");
        let parsed = SignedCertificate::from_json(json.as_bytes()).expect("parse");
        assert!(matches!(
            parsed.verify(&trust),
            Err(CertificateError::BadSignature { .. })
        ));
    }

    #[test]
    fn any_altered_field_breaks_the_signature() {
        assert_tampering_fails(|c| {
            c.holders[0].name = PersonName::parse("王小五").expect("name");
        });
        assert_tampering_fails(|c| {
            c.holders[0].share = Some(Share::parse("2/3").expect("share"));
            c.holders[1].share = Some(Share::parse("1/3").expect("share"));
        });
        assert_tampering_fails(|c| {
            c.unit_code = UnitCode::parse("370781001001GB00001F00010102").expect("unit");
        });
        assert_tampering_fails(|c| {
            c.certificate_number =
                CertificateNumber::parse("鲁(2026)青州市不动产权第0000124号").expect("number");
        });
        assert_tampering_fails(|c| c.area_m2 = crate::AreaM2::parse("189.50").expect("area"));
        assert_tampering_fails(|c| c.notes.push('。'));
        assert_tampering_fails(|c| c.replaces.clear());
        assert_tampering_fails(|c| c.holders.reverse());
    }

    #[test]
    fn altered_json_text_breaks_the_signature() {
        let (signed, trust) = signed();
        let json = signed.to_json().expect("json");
        for (from, to) in [
            ("张小三", "张小二"),
            ("\"1/2\"", "\"2/4\""), // parses to the same share: still verifies (see below)
            ("0000123号", "0000321号"),
            ("F00010101", "F00010102"),
        ] {
            assert!(json.contains(from), "{from}");
            let altered = json.replacen(from, to, 1);
            let parsed = SignedCertificate::from_json(altered.as_bytes()).expect("parse");
            let result = parsed.verify(&trust);
            if from == "\"1/2\"" {
                // The share is normalised to 1/2 before the bytes are rebuilt: same value, same
                // signature. What is verified is always the value, never the spelling.
                assert!(result.is_ok(), "{result:?}");
            } else {
                assert!(
                    matches!(result, Err(CertificateError::BadSignature { .. })),
                    "{from}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn another_key_fails() {
        let (signed, _) = signed();
        let other = ow_bundle::generate_signing_key().expect("key");
        let other_trust = CertificateTrust::from_verifying_keys([other.verifying_key()]);
        let err = signed.verify(&other_trust).expect_err("unknown key");
        assert!(matches!(err, CertificateError::UnknownKey { .. }), "{err}");
        assert!(err.to_string().contains(&signed.key_id));

        // Same key id claimed, but signed by another key.
        let mut forged = sign(&sample_in_shares(), &other).expect("sign");
        forged.key_id = signed.key_id.clone();
        let trust = CertificateTrust::from_verifying_keys([fixed_key().verifying_key()]);
        assert!(matches!(
            forged.verify(&trust),
            Err(CertificateError::BadSignature { .. })
        ));
    }

    #[test]
    fn rotation_keeps_old_certificates_valid() {
        let (old_signed, _) = signed();
        let new_key = ow_bundle::generate_signing_key().expect("key");
        let new_signed = sign(&sample(), &new_key).expect("sign");
        let mut trust = CertificateTrust::new();
        assert!(trust.is_empty());
        let old_id = trust.add(fixed_key().verifying_key());
        let new_id = trust.add(new_key.verifying_key());
        assert_eq!(trust.len(), 2);
        assert!(trust.key_ids().any(|id| id == old_id));
        assert_eq!(new_signed.key_id, new_id);
        old_signed.verify(&trust).expect("old key");
        new_signed.verify(&trust).expect("new key");
    }

    #[test]
    fn bad_signature_encodings() {
        let (signed, trust) = signed();
        let mut s = signed.clone();
        s.signature = "not base64!".into();
        let err = s.verify(&trust).expect_err("bad base64");
        assert!(err.to_string().contains("not base64"), "{err}");
        let mut s = signed.clone();
        s.signature = STANDARD.encode([0u8; 63]);
        let err = s.verify(&trust).expect_err("short");
        assert!(err.to_string().contains("63 bytes"), "{err}");
        let mut s = signed;
        s.signature = STANDARD.encode([0u8; 64]);
        assert!(matches!(
            s.verify(&trust),
            Err(CertificateError::BadSignature { .. })
        ));
    }

    #[test]
    fn truncated_and_malformed_json_fail_clearly() {
        let (signed, _) = signed();
        let json = signed.to_json().expect("json");
        for cut in [0, 1, json.len() / 3, json.len() / 2, json.len() - 1] {
            let err = SignedCertificate::from_json(&json.as_bytes()[..cut]).expect_err("cut");
            assert!(matches!(err, CertificateError::Malformed { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("not well-formed"), "{text}");
            assert!(text.contains("EOF") || text.contains("line"), "{text}");
        }
        for bad in [
            &b"[]"[..],
            b"{}",
            b"{\"certificate\":{},\"key_id\":\"x\",\"signature\":\"y\"}",
            b"\xff\xfe",
        ] {
            assert!(matches!(
                SignedCertificate::from_json(bad),
                Err(CertificateError::Malformed { .. })
            ));
        }
        let extra = json.replacen('{', "{\"extra\": true,", 1);
        assert!(matches!(
            SignedCertificate::from_json(extra.as_bytes()),
            Err(CertificateError::Malformed { .. })
        ));
        let bad_field = json.replace("\"370781001001GB00001F00010101\"", "\"37078100\"");
        let err = SignedCertificate::from_json(bad_field.as_bytes()).expect_err("bad unit");
        assert!(err.to_string().contains("in \"certificate\""), "{err}");
    }

    #[test]
    fn unknown_format_is_named() {
        let (signed, trust) = signed();
        let json = signed.to_json().expect("json");
        let v2 = json.replace("onewindow-ecert/1", "onewindow-ecert/2");
        let err = SignedCertificate::from_json(v2.as_bytes()).expect_err("v2");
        assert!(
            matches!(&err, CertificateError::UnknownFormat { found, .. } if found == "onewindow-ecert/2"),
            "{err}"
        );
        let mut in_memory = signed;
        in_memory.certificate.format = "onewindow-ecert/2".into();
        assert!(matches!(
            in_memory.verify(&trust),
            Err(CertificateError::UnknownFormat { .. })
        ));
    }

    #[test]
    fn oversize_input_is_refused_before_parsing() {
        let big = vec![b' '; MAX_SIGNED_JSON_BYTES + 1];
        let err = SignedCertificate::from_json(&big).expect_err("too big");
        assert!(
            matches!(err, CertificateError::TooLarge { size, limit } if size == MAX_SIGNED_JSON_BYTES + 1 && limit == MAX_SIGNED_JSON_BYTES)
        );
        // Exactly at the limit is parsed (and here fails as JSON, not as size).
        let at_limit = vec![b' '; MAX_SIGNED_JSON_BYTES];
        assert!(matches!(
            SignedCertificate::from_json(&at_limit),
            Err(CertificateError::Malformed { .. })
        ));
    }

    #[test]
    fn signing_checks_the_certificate() {
        let mut c = sample();
        c.holders.clear();
        assert!(matches!(
            sign(&c, &fixed_key()),
            Err(CertificateError::Invalid {
                field: "holders",
                ..
            })
        ));
    }

    #[test]
    fn a_signed_but_inconsistent_certificate_is_refused() {
        // Sign an inconsistent certificate by hand, as a faulty issuer might.
        let key = fixed_key();
        let mut c = sample();
        c.district_code = "12".into();
        let signature = key.sign(&canonical_bytes(&c).expect("bytes"));
        let signed = SignedCertificate {
            certificate: c,
            key_id: key_id(&key.verifying_key()),
            signature: STANDARD.encode(signature.to_bytes()),
        };
        let trust = CertificateTrust::from_verifying_keys([key.verifying_key()]);
        assert!(matches!(
            signed.verify(&trust),
            Err(CertificateError::Invalid {
                field: "district_code",
                ..
            })
        ));
    }
}
