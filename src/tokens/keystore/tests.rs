use std::os::unix::fs::MetadataExt;

use super::files::write_new_key_file;
use super::*;
use crate::clock::ManualClock;
use crate::tokens::jwk_thumbprint;
use crate::tokens::manifest::ManifestEntry;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsVerifier, ES256, RS256};
use serde_json::json;

fn jwks_keys(store: &KeyStore) -> Vec<Map<String, Value>> {
    let jwks: Value = serde_json::from_slice(&store.jwks_bytes()).expect("JWKS is JSON");
    jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k.as_object().expect("JWK object").clone())
        .collect()
}

fn pem_names(dir: &Path) -> Vec<String> {
    pem_files(dir)
        .expect("list")
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect()
}

fn claims() -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!("https://op.example"));
    claims.insert("sub".into(), json!("zhangsan"));
    claims.insert("aud".into(), json!("client-1"));
    claims.insert("iat".into(), json!(1_700_000_000));
    claims.insert("exp".into(), json!(1_700_000_600));
    claims.insert("name".into(), json!("张三"));
    claims
}

/// Verifies `jwt` with the JWKS key of `kid` the way a relying party would, and returns its
/// header and claims.
fn verify(store: &KeyStore, jwt: &str) -> (Value, Map<String, Value>) {
    let header_b64 = jwt.split('.').next().expect("header part");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).expect("base64url"))
            .expect("header JSON");
    let kid = header["kid"].as_str().expect("kid in header");
    let jwk = jwks_keys(store)
        .into_iter()
        .find(|k| k["kid"] == kid)
        .expect("kid is in the JWKS");
    let jwk = Jwk::from_map(jwk).expect("JWK");
    let verifier: Box<dyn JwsVerifier> = match header["alg"].as_str() {
        Some("RS256") => Box::new(RS256.verifier_from_jwk(&jwk).expect("verifier")),
        Some("ES256") => Box::new(ES256.verifier_from_jwk(&jwk).expect("verifier")),
        Some("EdDSA") => Box::new(EdDSA.verifier_from_jwk(&jwk).expect("verifier")),
        other => panic!("unexpected alg {other:?}"),
    };
    let (payload, _) =
        josekit::jwt::decode_with_verifier(jwt, verifier.as_ref()).expect("signature verifies");
    (header, payload.claims_set().clone())
}

#[test]
fn empty_dir_generates_exactly_one_rs256_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("README.md"), "# keys\n").expect("readme");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    assert_eq!(store.signing_alg(), "RS256");
    assert_eq!(pem_names(dir.path()).len(), 1);
    assert_eq!(jwks_keys(&store).len(), 1);
    assert_eq!(store.keys().len(), 1);
    assert_eq!(store.keys()[0].status, KeyStatus::Active);
    let manifest = Manifest::read(dir.path())
        .expect("manifest")
        .expect("written");
    assert_eq!(manifest.keys.len(), 1);
    assert_eq!(manifest.keys[0].kid, store.active_kid());
    assert_eq!(manifest.keys[0].alg, SigningAlg::Rs256);
    assert_eq!(pem_names(dir.path()), vec![manifest.keys[0].file.clone()]);
}

#[test]
fn missing_key_dir_is_created_owner_only() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("a").join("keys");
    let store = KeyStore::load_or_generate(&dir).expect("load");
    assert_eq!(pem_names(&dir).len(), 1);
    assert!(!store.active_kid().is_empty());
    let mode = fs::metadata(&dir).expect("stat").mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn generated_key_file_has_mode_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let meta = fs::metadata(&store.keys()[0].path).expect("stat");
    assert_eq!(meta.mode() & 0o777, 0o600);
    let pem = fs::read_to_string(&store.keys()[0].path).expect("read");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
}

#[test]
fn kid_is_stable_across_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = KeyStore::load_or_generate(dir.path()).expect("first load");
    let second = KeyStore::load_or_generate(dir.path()).expect("second load");
    assert_eq!(first.active_kid(), second.active_kid());
    assert_eq!(first.jwks_bytes(), second.jwks_bytes());
    assert_eq!(pem_names(dir.path()).len(), 1, "no second key generated");
}

#[test]
fn kid_is_the_rfc7638_thumbprint_of_the_published_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let jwk = Value::Object(jwks_keys(&store).remove(0));
    assert_eq!(
        jwk_thumbprint(&jwk).ok().as_deref(),
        Some(store.active_kid())
    );
    assert_eq!(jwk["kid"], store.active_kid());
}

#[test]
fn jwks_holds_only_public_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let keys = jwks_keys(&store);
    let names: Vec<&str> = keys[0].keys().map(String::as_str).collect();
    assert_eq!(names, ["kty", "use", "alg", "kid", "n", "e"]);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["alg"], "RS256");
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!keys[0].contains_key(private), "JWKS leaks {private}");
    }
    // RSA-2048: a 256-byte modulus is 342 base64url characters.
    assert_eq!(keys[0]["n"].as_str().map(str::len), Some(342));
}

#[test]
fn signed_jwt_verifies_against_the_jwks_and_names_kid_alg_typ() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let jwt = store.sign_jwt(&claims()).expect("sign");
    let (header, payload) = verify(&store, &jwt);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], store.active_kid());
    assert_eq!(header.as_object().map(Map::len), Some(3), "{header}");
    assert_eq!(payload, claims());
}

#[test]
fn protected_header_is_typ_kid_alg_as_josekit_writes_it_rfc7515_7_1() {
    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::load_or_generate_with(dir.path(), alg, &ManualClock::new(1))
            .expect("generate");
        let jwt = store
            .sign_jwt_with(alg, "logout+jwt", &claims())
            .expect("sign");
        let header = jwt.split('.').next().expect("header");
        let header = URL_SAFE_NO_PAD.decode(header).expect("base64url");
        assert_eq!(
            String::from_utf8(header).expect("utf-8"),
            format!(
                r#"{{"typ":"logout+jwt","kid":"{}","alg":"{}"}}"#,
                store.active_kid(),
                alg.as_str()
            )
        );
        assert_eq!(verify(&store, &jwt).1, claims());
    }
}

#[test]
fn jwt_signed_before_restart_verifies_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jwt = KeyStore::load_or_generate(dir.path())
        .expect("first load")
        .sign_jwt(&claims())
        .expect("sign");
    let restarted = KeyStore::load_or_generate(dir.path()).expect("second load");
    assert_eq!(verify(&restarted, &jwt).1, claims());
}

#[test]
fn es256_and_eddsa_keys_are_generated_signed_with_and_reloaded() {
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_234);
        let store = KeyStore::load_or_generate_with(dir.path(), alg, &clock).expect("generate");
        assert_eq!(store.signing_alg(), alg.as_str());
        assert_eq!(store.keys()[0].created_at, Some(1_234));
        let jwt = store.sign_jwt(&claims()).expect("sign");
        let (header, payload) = verify(&store, &jwt);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(payload, claims());
        let key = jwks_keys(&store).remove(0);
        assert!(!key.contains_key("d"), "{alg} JWKS leaks d");
        // Reloading (even when asked for RS256) keeps the existing key and its alg.
        let reloaded =
            KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock).expect("reload");
        assert_eq!(reloaded.active_kid(), store.active_kid());
        assert_eq!(reloaded.signing_alg(), alg.as_str());
    }
}

#[test]
fn corrupt_key_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let path = store.keys()[0].path.clone();
    let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA";
    fs::write(
        &path,
        format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
    )
    .expect("corrupt");
    let err = KeyStore::load_or_generate(dir.path()).expect_err("corrupt key accepted");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains(secret), "error quotes the key: {message}");
    assert!(matches!(err, KeyError::InvalidKey { .. }));
    // Not silently replaced by a new key.
    assert_eq!(pem_names(dir.path()).len(), 1);
}

#[test]
fn corrupt_lone_key_file_without_manifest_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mine.pem");
    fs::write(&path, "not a key").expect("write");
    let err = KeyStore::load_or_generate(dir.path()).expect_err("garbage accepted");
    assert!(err.to_string().contains("mine.pem"), "{err}");
    assert_eq!(pem_names(dir.path()), vec!["mine.pem".to_owned()]);
}

#[test]
fn missing_key_file_listed_in_manifest_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let path = store.keys()[0].path.clone();
    fs::remove_file(&path).expect("remove");
    let err = KeyStore::load_or_generate(dir.path()).expect_err("missing key accepted");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

/// The error of loading a new key directory again after its (RS256) active key file was
/// overwritten with a fresh key of `alg`, behind the manifest's back.
fn reload_after_swapping_the_active_key_for(alg: SigningAlg) -> KeyError {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let other = alg.generate_pem().expect("generate");
    fs::write(&store.keys()[0].path, other).expect("swap");
    KeyStore::load_or_generate(dir.path()).expect_err("swapped key accepted")
}

#[test]
fn key_file_swapped_behind_the_manifest_is_a_kid_mismatch() {
    let err = reload_after_swapping_the_active_key_for(SigningAlg::Rs256);
    assert!(matches!(err, KeyError::KidMismatch { .. }), "{err}");
}

#[test]
fn key_of_another_type_than_the_manifest_says_is_an_error() {
    let err = reload_after_swapping_the_active_key_for(SigningAlg::Es256);
    assert!(err.to_string().contains("ES256"), "{err}");
}

#[test]
fn lone_key_file_without_manifest_is_used_without_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = SigningAlg::EdDsa.generate_pem().expect("generate");
    write_new_key_file(&dir.path().join("operator.pem"), &pem).expect("write");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    assert_eq!(store.signing_alg(), "EdDSA");
    assert!(Manifest::read(dir.path()).expect("read").is_none());
    let again = KeyStore::load_or_generate(dir.path()).expect("reload");
    assert_eq!(again.active_kid(), store.active_kid());
}

#[test]
fn several_key_files_without_manifest_are_ambiguous() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a.pem", "b.pem"] {
        let pem = SigningAlg::Es256.generate_pem().expect("generate");
        write_new_key_file(&dir.path().join(name), &pem).expect("write");
    }
    let err = KeyStore::load_or_generate(dir.path()).expect_err("guessed a key");
    assert!(
        matches!(err, KeyError::AmbiguousKeys { count: 2, .. }),
        "{err}"
    );
}

#[test]
fn retiring_key_stays_published_but_does_not_sign() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two keys made in their own directories, then brought together by a manifest, as a
    // rotation would leave them.
    let old_dir = tempfile::tempdir().expect("tempdir");
    let new_dir = tempfile::tempdir().expect("tempdir");
    let old = KeyStore::load_or_generate(old_dir.path()).expect("old");
    let new = KeyStore::load_or_generate_with(
        new_dir.path(),
        SigningAlg::Es256,
        &ManualClock::new(2_000),
    )
    .expect("new");
    let old_jwt = old.sign_jwt(&claims()).expect("sign");
    let mut entries = Vec::new();
    for (store, status) in [(&new, KeyStatus::Active), (&old, KeyStatus::Retiring)] {
        let info = &store.keys()[0];
        let file = info
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name");
        fs::copy(&info.path, dir.path().join(file)).expect("copy");
        entries.push(ManifestEntry {
            kid: info.kid.clone(),
            alg: info.alg,
            file: file.to_owned(),
            created_at: info.created_at.unwrap_or_default(),
            status,
            retire_at: None,
        });
    }
    entries.reverse(); // manifest order must not decide which key signs
    Manifest { keys: entries }
        .write(dir.path())
        .expect("manifest");

    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    assert_eq!(store.active_kid(), new.active_kid());
    assert_eq!(store.signing_alg(), "ES256");
    let kids: Vec<Value> = jwks_keys(&store).iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids, [json!(new.active_kid()), json!(old.active_kid())]);
    // Tokens of the retiring key still verify; new tokens come from the active key.
    assert_eq!(verify(&store, &old_jwt).1, claims());
    let (header, _) = verify(&store, &store.sign_jwt(&claims()).expect("sign"));
    assert_eq!(header["kid"], new.active_kid());
}

#[test]
fn key_file_not_in_manifest_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let stray = SigningAlg::Rs256.generate_pem().expect("generate");
    write_new_key_file(&dir.path().join("stray.pem"), &stray).expect("write");
    let reloaded = KeyStore::load_or_generate(dir.path()).expect("reload");
    assert_eq!(reloaded.active_kid(), store.active_kid());
    assert_eq!(jwks_keys(&reloaded).len(), 1);
}

#[test]
fn group_readable_key_file_still_loads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    fs::set_permissions(&store.keys()[0].path, fs::Permissions::from_mode(0o640)).expect("chmod");
    // Only a warning: refusing to start over a mode would be harsher than the risk.
    let reloaded = KeyStore::load_or_generate(dir.path()).expect("reload");
    assert_eq!(reloaded.active_kid(), store.active_kid());
}

#[test]
fn debug_output_shows_no_key_material() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let debug = format!("{store:?}");
    assert!(debug.contains(store.active_kid()));
    let n = jwks_keys(&store)[0]["n"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!debug.contains(&n[..40]));
    assert!(!debug.contains("PRIVATE"));
}

#[test]
fn key_store_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeyStore>();
}

#[test]
fn one_active_key_per_algorithm_each_signs_its_own_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000);
    for alg in [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa] {
        KeyStore::generate_key(dir.path(), alg, &clock).expect("generate");
    }
    let store =
        KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock).expect("load");
    // RS256 is the default whatever the order the keys were made in (OIDC Core §15.1).
    assert_eq!(store.signing_alg(), "RS256");
    assert_eq!(store.signing_algs().len(), 3);
    for alg in SigningAlg::ALL {
        let jwt = store.sign_jwt_with(alg, "JWT", &claims()).expect("sign");
        let (header, payload) = verify(&store, &jwt);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(payload, claims());
        assert_eq!(
            store.verify_jwt(&jwt).expect("own token verifies"),
            claims()
        );
    }
    assert!(matches!(
        KeyStore::generate_key(dir.path(), SigningAlg::Es256, &clock),
        Err(KeyError::AlreadyActive("ES256"))
    ));
}

#[test]
fn verify_jwt_refuses_tampered_foreign_and_alg_none_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::load_or_generate(dir.path()).expect("load");
    let jwt = store.sign_jwt(&claims()).expect("sign");
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"lisi"}"#);
    assert!(store.verify_jwt(&parts.join(".")).is_err(), "tampered");
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = KeyStore::load_or_generate(other_dir.path()).expect("other");
    assert!(
        store
            .verify_jwt(&other.sign_jwt(&claims()).expect("sign"))
            .is_err(),
        "foreign"
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","kid":"{}"}}"#,
            store.active_kid()
        )),
        URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#)
    );
    assert!(store.verify_jwt(&none).is_err(), "alg none");
    assert!(store.verify_jwt("not a jwt").is_err());
}

#[test]
fn rotation_keeps_the_old_key_published_for_the_grace_period_then_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_000);
    let first =
        KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock).expect("first");
    let old_jwt = first.sign_jwt(&claims()).expect("sign");
    let r = KeyStore::rotate(dir.path(), SigningAlg::Rs256, 3_600, &clock).expect("rotate");
    assert_eq!(r.retired.as_deref(), Some(first.active_kid()));
    let mode = fs::metadata(&r.new_key.path).expect("meta").mode() & 0o777;
    assert_eq!(mode, 0o600, "new private key file is owner-only");

    let during = KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock)
        .expect("during grace");
    assert_eq!(during.active_kid(), r.new_key.kid);
    assert_eq!(jwks_keys(&during).len(), 2);
    assert_eq!(
        verify(&during, &old_jwt).1,
        claims(),
        "old tokens still verify"
    );

    clock.advance(3_600);
    let after = KeyStore::load_or_generate_with(dir.path(), SigningAlg::Rs256, &clock)
        .expect("after grace");
    assert_eq!(
        jwks_keys(&after).len(),
        1,
        "expired retiring key unpublished"
    );
    assert_eq!(pem_names(dir.path()).len(), 2, "loading never deletes");
    let r2 = KeyStore::rotate(dir.path(), SigningAlg::Rs256, 60, &clock).expect("rotate");
    assert_eq!(r2.removed, vec![first.active_kid().to_owned()]);
    assert_eq!(pem_names(dir.path()).len(), 2, "expired key file deleted");
}

#[test]
fn rotation_adopts_a_lone_key_file_without_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = SigningAlg::Es256.generate_pem().expect("generate");
    write_new_key_file(&dir.path().join("mine.pem"), &pem).expect("write");
    let clock = ManualClock::new(5);
    let r = KeyStore::rotate(dir.path(), SigningAlg::Es256, 10, &clock).expect("rotate");
    assert!(r.retired.is_some());
    let listed = KeyStore::list(dir.path()).expect("list");
    assert_eq!(listed.len(), 2);
}
