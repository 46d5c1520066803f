//! keygen and pubkey, and interoperability with the `age` crate.

use std::str::FromStr as _;

use secrecy::ExposeSecret as _;

use crate::support::*;

#[test]
fn keygen_writes_a_private_file_in_age_keygen_format() {
    let env = Env::new();
    let text = env.read("key.txt");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let created = lines[0].strip_prefix("# created: ").expect("created line");
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "RFC 3339: {created}"
    );
    assert_eq!(lines[1], format!("# public key: {}", env.recipient));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    assert!(env.recipient.starts_with("age1"));
    #[cfg(unix)]
    assert_eq!(file_mode(&env.path("key.txt")), 0o600);
    // The age crate reads it, and agrees on the recipient.
    let age_id = age::x25519::Identity::from_str(lines[2]).expect("age parses a gitseal identity");
    assert_eq!(age_id.to_public().to_string(), env.recipient);
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let env = Env::new();
    let before = env.read("key.txt");
    let out = env.run(&["keygen", "-o", "key.txt"]);
    out.exits(2);
    assert!(
        out.stderr
            .contains("key.txt already exists; not overwriting a key (pass --force to replace it"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert_eq!(env.read("key.txt"), before, "file unchanged");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(env.path("key.txt"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let out = env.run(&["keygen", "-o", "key.txt", "--force"]);
    out.ok();
    assert_ne!(env.read("key.txt"), before, "replaced");
    assert!(env.read("key.txt").contains(out.stdout.trim()));
    #[cfg(unix)]
    assert_eq!(
        file_mode(&env.path("key.txt")),
        0o600,
        "a replaced key file is private again"
    );
    assert!(out.stderr.contains("key id "), "{}", out.stderr);

    let out = env.run(&["keygen", "--force"]);
    assert_eq!(out.code, 2, "--force needs -o: {}", out.stderr);
    let out = env.run(&["keygen", "-o", "no/such/dir/key.txt"]);
    out.exits_with(2, "no/such/dir/key.txt");
}

#[test]
fn keygen_without_output_prints_the_identity_file() {
    let env = Env::new();
    let out = env.run(&["keygen"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("# created: "), "{}", out.stdout);
    assert!(out.stdout.contains("\n# public key: age1"));
    assert!(out.stdout.contains("\nAGE-SECRET-KEY-1"));
    assert!(
        out.stderr.is_empty(),
        "no warning when stdout is not a terminal: {}",
        out.stderr
    );
    // pubkey reads it back from stdin.
    let back = env.run_stdin(&["pubkey", "-i", "-"], out.stdout.as_bytes());
    assert_eq!(back.code, 0);
    let public = out
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("# public key: "))
        .expect("line");
    assert_eq!(back.stdout.trim(), public);
}

#[test]
fn pubkey_prints_recipients_and_key_ids() {
    let env = Env::new();
    let out = env.run(&["pubkey", "-i", "key.txt"]);
    assert_eq!(out.stdout, format!("{}\n", env.recipient));
    // Two identities in one file, --key-id.
    let second = env.run(&["keygen"]).stdout;
    env.write("two.txt", &format!("{}\n{second}", env.read("key.txt")));
    let out = env.run(&["pubkey", "-i", "two.txt", "--key-id"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    let (r, id) = lines[0].split_once(' ').expect("recipient and key id");
    assert_eq!(r, env.recipient);
    let recipient: gitseal_crypto::Recipient = r.parse().expect("recipient");
    assert_eq!(id, recipient.key_id().to_string());
}

#[test]
fn pubkey_errors() {
    let env = Env::new();
    let out = env.run(&["pubkey", "-i", "missing.txt"]);
    out.exits_with(2, "cannot read missing.txt");
    let key = env.read("key.txt");
    let broken = key.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-1X");
    env.write("broken.txt", &broken);
    let out = env.run(&["pubkey", "-i", "broken.txt"]);
    out.exits_with(2, "broken.txt: not a usable identity file");
    assert!(
        out.stderr.contains("invalid identity on line 3"),
        "{}",
        out.stderr
    );
    let secret_line = key.lines().nth(2).expect("line");
    assert!(
        !out.stderr.contains(&secret_line[20..]),
        "the key is not echoed"
    );
    env.write("public.txt", &format!("{}\n", env.recipient));
    let out = env.run(&["pubkey", "-i", "public.txt"]);
    out.exits_with(2, "line 1");
    env.write("empty.txt", "# nothing\n");
    let out = env.run(&["pubkey", "-i", "empty.txt"]);
    assert!(out.stderr.contains("no identity found"), "{}", out.stderr);
}

#[test]
fn age_identities_work_and_gitseal_keys_work_with_age() {
    let env = Env::new();
    // An identity made by the age crate seals and unseals with gitseal.
    let age_id = age::x25519::Identity::generate();
    env.write(
        "age-key.txt",
        &format!("# created by age\n{}\n", age_id.to_string().expose_secret()),
    );
    let out = env.run(&["pubkey", "-i", "age-key.txt"]);
    assert_eq!(out.stdout.trim(), age_id.to_public().to_string());
    let value = b"s3cr3t-T0KEN\x00\xff";
    let sealed = env.run_stdin(
        &[
            "seal",
            "--raw",
            "-r",
            &age_id.to_public().to_string(),
            "--namespace",
            "ns",
            "--name",
            "n",
            "--key",
            "k",
        ],
        value,
    );
    sealed.ok();
    env.write(
        "s.yaml",
        &format!(
            "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {{name: n, namespace: ns}}\nspec:\n  encryptedData:\n    k: {}",
            sealed.stdout
        ),
    );
    let out = env.run(&["unseal", "-i", "age-key.txt", "-f", "s.yaml"]);
    out.ok();
    assert_eq!(data_item(&out.stdout, 0, "k"), value);

    // age encrypts to a gitseal recipient and decrypts with a gitseal identity.
    let recipient =
        age::x25519::Recipient::from_str(&env.recipient).expect("age parses a gitseal recipient");
    let ciphertext = age::encrypt(&recipient, b"hello").expect("encrypt");
    let key_line = env
        .read("key.txt")
        .lines()
        .nth(2)
        .expect("identity line")
        .to_string();
    let identity = age::x25519::Identity::from_str(&key_line).expect("identity");
    assert_eq!(
        age::decrypt(&identity, &ciphertext).expect("decrypt"),
        b"hello"
    );
}

#[test]
fn keygen_warns_when_the_key_file_could_be_committed() {
    let env = Env::new();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(env.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    };
    // Outside any work tree: no warning.
    let out = env.run(&["keygen", "-o", "outside.txt"]);
    out.ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    git(&["init", "-q"]);
    // Inside, not ignored: warned (the key is still written, mode 0600).
    let out = env.run(&["keygen", "-o", "keys/new.txt"]);
    out.exits(2); // no such directory yet: nothing written, no warning
    std::fs::create_dir(env.path("keys")).expect("mkdir");
    let out = env.run(&["keygen", "-o", "keys/new.txt"]);
    out.exits_with(0, "warning: keys/new.txt is inside the git work tree")
        .exits_with(0, "not ignored");
    assert!(env.path("keys/new.txt").exists());
    // Ignored: no warning.
    env.write(".gitignore", "*.key\n");
    let out = env.run(&["keygen", "-o", "keys/other.key"]);
    out.ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}
