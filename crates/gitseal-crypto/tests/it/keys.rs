//! Keys: age text forms, interop with the `age` crate, key ids, identity files.

use gitseal_crypto::{Error, Identity, KeyId, Recipient};
use secrecy::ExposeSecret;
use std::io::{Read, Write};
use std::str::FromStr;

#[test]
fn identity_text_round_trip_and_recipient() {
    let id = Identity::generate();
    let text = id.to_secret_string();
    assert!(text.expose_secret().starts_with("AGE-SECRET-KEY-1"));
    let back = Identity::from_str(text.expose_secret()).expect("parse");
    assert_eq!(back.recipient(), id.recipient());
    assert_eq!(back.key_id(), id.key_id());
    let r = id.recipient().to_string();
    assert!(r.starts_with("age1"), "{r}");
    assert_eq!(
        Recipient::from_str(&r).expect("parse").key_id(),
        id.key_id()
    );
}

#[test]
fn age_keygen_identity_works_and_ours_work_with_age() {
    // An identity made by the age crate (what age-keygen does) parses here.
    let age_id = age::x25519::Identity::generate();
    let ours = Identity::from_str(age_id.to_string().expose_secret()).expect("age identity parses");
    assert_eq!(ours.recipient().to_string(), age_id.to_public().to_string());

    // Our identity decrypts what age encrypted to our recipient, and the reverse.
    let ours = Identity::generate();
    let recipient =
        age::x25519::Recipient::from_str(&ours.recipient().to_string()).expect("recipient");
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("encryptor");
    let mut ct = vec![];
    let mut w = encryptor.wrap_output(&mut ct).expect("wrap");
    w.write_all(b"interop").expect("write");
    w.finish().expect("finish");
    let age_identity = age::x25519::Identity::from_str(ours.to_secret_string().expose_secret())
        .expect("age parses ours");
    let decryptor = age::Decryptor::new(&ct[..]).expect("decryptor");
    let mut r = decryptor
        .decrypt(std::iter::once(&age_identity as &dyn age::Identity))
        .expect("decrypt");
    let mut pt = vec![];
    r.read_to_end(&mut pt).expect("read");
    assert_eq!(pt, b"interop");
    assert_eq!(
        ours.to_age().to_public().to_string(),
        ours.recipient().to_string()
    );
}

#[test]
fn key_id_is_sha256_prefix_of_public_key() {
    use sha2::Digest;
    let id = Identity::generate();
    let digest = sha2::Sha256::digest(id.recipient().as_bytes());
    assert_eq!(id.key_id().to_string(), hex::encode(&digest[..8]));
    assert_eq!(id.key_id().to_string().len(), 16);
    assert_eq!(
        KeyId::from_str(&id.key_id().to_string()).expect("parse"),
        id.key_id()
    );
    assert!(matches!(
        KeyId::from_str("ABCDEF0123456789"),
        Err(Error::InvalidKeyId(_))
    ));
    assert!(matches!(
        KeyId::from_str("abc"),
        Err(Error::InvalidKeyId(_))
    ));
}

#[test]
fn identity_file_format_matches_age_keygen() {
    let id = Identity::generate();
    let file = id.to_identity_file(Some("2026-01-01T00:00:00Z"));
    let text = file.expose_secret();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# created: 2026-01-01T00:00:00Z");
    assert_eq!(lines[1], format!("# public key: {}", id.recipient()));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    let parsed = Identity::parse_file(text).expect("parse");
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].key_id(), id.key_id());
    // age itself reads the file.
    let age_ids = age::IdentityFile::from_buffer(text.as_bytes()).expect("age reads it");
    assert_eq!(age_ids.into_identities().expect("identities").len(), 1);
}

#[test]
fn identity_file_errors_name_the_line_never_the_content() {
    let secretish = "AGE-SECRET-KEY-1NOTAVALIDKEYBUTLOOKSSECRET";
    let text = format!("# comment\n\n{secretish}\n");
    let err = Identity::parse_file(&text).expect_err("invalid");
    assert!(
        matches!(err, Error::InvalidIdentity { line: Some(3) }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("line 3"), "{msg}");
    assert!(!msg.contains("NOTAVALID"), "{msg}");
    assert!(matches!(
        Identity::parse_file("# only comments\n"),
        Err(Error::NoIdentities)
    ));
}

#[test]
fn recipient_errors() {
    let id = Identity::generate();
    let err = Recipient::from_str(id.to_secret_string().expose_secret())
        .expect_err("identity is not a recipient");
    let msg = err.to_string();
    assert!(msg.contains("private identity"), "{msg}");
    assert!(
        !msg.contains(&id.to_secret_string().expose_secret()[20..]),
        "secret echoed: {msg}"
    );
    assert!(matches!(
        Recipient::from_str("age1qqqq"),
        Err(Error::InvalidRecipient { .. })
    ));
    assert!(matches!(
        Recipient::from_str(""),
        Err(Error::InvalidRecipient { .. })
    ));
}

#[test]
fn debug_never_prints_key_material() {
    let id = Identity::generate();
    let dbg = format!("{id:?}");
    let secret = id.to_secret_string();
    assert!(!dbg.contains(&secret.expose_secret()[16..]), "{dbg}");
    assert!(dbg.contains("REDACTED"));
    assert!(dbg.contains(&id.key_id().to_string()));
}
