//! `gitseal seal --from-vault ITEM=REF`: Vault references in `spec.vaultData`,
//! when sealing and with `--merge-into`, and the errors that write nothing.

use crate::support::*;

const ONE_SECRET: &str = "apiVersion: v1
kind: Secret
metadata: {name: db, namespace: app}
stringData:
  user: hunter2-PLAINTEXT
";

fn seal_one(env: &Env, extra: &[&str]) -> Out {
    env.write("secret.yaml", ONE_SECRET);
    let mut args = vec!["-f", "secret.yaml"];
    args.extend_from_slice(extra);
    env.seal(&args)
}

#[test]
fn sealing_adds_vault_items_next_to_sealed_ones() {
    let env = Env::new();
    let out = seal_one(
        &env,
        &[
            "--from-vault",
            "password=kv/app/db#password@3",
            "--from-vault",
            "token=kv1:secret/app/api#token",
            "--from-vault",
            "host=kv2:kv/app/db#host",
            "-o",
            "sealed.yaml",
        ],
    );
    out.ok();
    let v = yaml(&env.read("sealed.yaml"));
    let spec = &v["spec"];
    assert!(spec["encryptedData"]["user"]
        .as_str()
        .is_some_and(|s| s.starts_with("gs1:")));
    assert_eq!(
        spec["vaultData"],
        yaml(
            "password: {mount: kv, path: app/db, field: password, version: 3}
token: {mount: secret, path: app/api, field: token, kv: v1}
host: {mount: kv, path: app/db, field: host}"
        )
    );
    // The sealed item still opens; the Vault items are not in the Secret offline.
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    out.ok();
    assert_eq!(data_item(&out.stdout, 0, "user"), b"hunter2-PLAINTEXT");
}

#[test]
fn bad_reference_exits_2_with_the_expected_form_and_writes_nothing() {
    let env = Env::new();
    let form = "expected [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION]";
    for (bad, says) in [
        ("password=kv/app/db", "missing `#FIELD`"),
        (
            "password=kv1:secret/app#tok@2",
            "KV v1 secrets have no versions",
        ),
        (
            "password=sys/app#x",
            "`sys` is a built-in Vault path, not a KV mount",
        ),
        (
            // gitseal:allow a Vault reference, not a secret
            "password=kv3:secret/app#x",
            "unknown KV version prefix `kv3:`",
        ),
        (
            "password",
            "expected ITEM=REF with REF [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION]",
        ),
        (
            "pass word=kv/app/db#password",
            "item key \"pass word\" is not a valid Secret key",
        ),
    ] {
        let out = seal_one(&env, &["--from-vault", bad, "-o", "sealed.yaml"]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("--from-vault <ITEM=REF>"),
            "{bad}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(says), "{bad}: {}", out.stderr);
        // A syntax error shows the form; a refused mount (`sys`) says why.
        if bad.contains('#') && !bad.contains(' ') && !says.contains("built-in") {
            assert!(out.stderr.contains(form), "{bad}: {}", out.stderr);
        }
        assert!(out.stdout.is_empty(), "{bad}: {}", out.stdout);
        assert!(!env.path("sealed.yaml").exists(), "{bad}: output written");
    }
}

#[test]
fn conflicting_or_ambiguous_items_exit_2_and_write_nothing() {
    let env = Env::new();
    // Same item sealed and from Vault.
    let out = seal_one(
        &env,
        &["--from-vault", "user=kv/app/db#user", "-o", "s.yaml"],
    );
    out.exits_with(2, "item \"user\" is both in the Secret and in --from-vault");
    // Same item twice.
    let out = seal_one(
        &env,
        &[
            "--from-vault",
            "a=kv/app/db#a",
            "--from-vault",
            "a=kv/app/db#b",
            "-o",
            "s.yaml",
        ],
    );
    out.exits_with(2, "names item \"a\" twice");
    // Two Secrets: which one gets the reference?
    env.write(
        "two.yaml",
        &format!("{ONE_SECRET}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: api, namespace: app}}\n"),
    );
    let out = env.seal(&[
        "-f",
        "two.yaml",
        "--from-vault",
        "a=kv/app/db#a",
        "-o",
        "s.yaml",
    ]);
    out.exits_with(2, "the input holds 2 Secrets");
    assert!(!env.path("s.yaml").exists());
}

#[test]
fn merge_into_replaces_a_sealed_item_and_keeps_the_rest_byte_for_byte() {
    let env = Env::new();
    let out = seal_one(&env, &["-o", "body.yaml"]);
    out.ok();
    let other = "# other objects stay as written\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c,   namespace: app}\n";
    let file = format!("# db credentials\n{}---\n{other}", env.read("body.yaml"));
    env.write("sealed.yaml", &file);

    // Vault only: no -f, no recipients needed.
    let out = env.run(&[
        "seal",
        "--merge-into",
        "sealed.yaml",
        "--from-vault",
        "user=kv/app/db#user@2",
        "--from-vault",
        "password=kv/app/db#password",
    ]);
    out.ok();
    assert!(out
        .stderr
        .contains("item \"user\" of db was sealed; now a Vault reference"));
    assert!(out.stderr.contains("added Vault item \"password\" to db"));
    let text = env.read("sealed.yaml");
    assert!(text.starts_with("# db credentials\n"), "{text}");
    assert!(text.ends_with(&format!("---\n{other}")), "{text}");
    let v = yaml(text.split("\n---\n").next().expect("first doc"));
    assert!(v["spec"].get("encryptedData").is_none(), "{text}");
    assert_eq!(
        v["spec"]["vaultData"],
        yaml(
            "user: {mount: kv, path: app/db, field: user, version: 2}
password: {mount: kv, path: app/db, field: password}"
        )
    );

    // Replace one reference; merging a sealed item back removes its reference.
    env.write(
        "new.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: app}\nstringData: {user: hunter2-PLAINTEXT}\n",
    );
    let out = env.seal(&[
        "--merge-into",
        "sealed.yaml",
        "-f",
        "new.yaml",
        "--from-vault",
        "password=kv1:secret/app/db#pw",
    ]);
    out.exits_with(0, "replaced Vault item \"password\" in db");
    let text = env.read("sealed.yaml");
    let v = yaml(text.split("\n---\n").next().expect("first doc"));
    assert!(v["spec"]["encryptedData"]["user"].is_string(), "{text}");
    assert_eq!(
        v["spec"]["vaultData"],
        yaml("password: {mount: secret, path: app/db, field: pw, kv: v1}")
    );
    assert!(text.ends_with(&format!("---\n{other}")), "{text}");
}

#[test]
fn merge_into_errors_leave_the_file_unchanged() {
    let env = Env::new();
    let out = seal_one(&env, &["-o", "sealed.yaml"]);
    out.ok();
    let before = env.read("sealed.yaml");
    let out = env.run(&[
        "seal",
        "--merge-into",
        "sealed.yaml",
        "--from-vault",
        "password=kv/app/db#",
    ]);
    out.exits_with(2, "expected [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION]");
    assert_eq!(env.read("sealed.yaml"), before);

    // Two SealedSecrets: which one?
    let two = format!("{before}---\n{}", before.replace("name: db", "name: api"));
    env.write("two.yaml", &two);
    let out = env.run(&[
        "seal",
        "--merge-into",
        "two.yaml",
        "--from-vault",
        "a=kv/app/db#a",
    ]);
    out.exits_with(
        2,
        "needs a file holding exactly one SealedSecret; it holds 2",
    );
    assert_eq!(env.read("two.yaml"), two);
}

#[test]
fn pass_through_sealed_secrets_do_not_get_the_vault_items() {
    let env = Env::new();
    let out = seal_one(&env, &["-o", "first.yaml"]);
    out.ok();
    let passed = env.read("first.yaml").replace("name: db", "name: old");
    env.write("mixed.yaml", &format!("{passed}---\n{ONE_SECRET}"));
    let out = env.seal(&[
        "-f",
        "mixed.yaml",
        "--pass-through",
        "--from-vault",
        "password=kv/app/db#password",
    ]);
    out.ok();
    let docs: Vec<serde_yaml::Value> = out.stdout.split("\n---\n").map(yaml).collect();
    assert_eq!(docs.len(), 2, "{}", out.stdout);
    assert_eq!(docs[0]["metadata"]["name"], "old");
    assert!(docs[0]["spec"].get("vaultData").is_none(), "{}", out.stdout);
    assert_eq!(docs[1]["metadata"]["name"], "db");
    assert_eq!(
        docs[1]["spec"]["vaultData"]["password"],
        yaml("{mount: kv, path: app/db, field: password}")
    );
}
