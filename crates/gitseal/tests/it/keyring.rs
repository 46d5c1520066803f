//! One keyring, found from the repository root and used the same way by
//! `seal`, `reseal` and `--merge-into`: path rules choose the environment,
//! and the commands say which environment and key ids they used.

use gitseal_crypto::{Envelope, KeyId};

use crate::support::*;

const DB: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData: {password: hunter2-PLAINTEXT, user: admin}\n";

/// A repository with keys: `prod.txt` and `dr.txt` (prod, DR required,
/// namespace scope, files under apps/prod/), `dev.txt` (dev, the default).
struct Repo {
    env: Env,
    prod: String,
    dr: String,
    dev: String,
}

impl Repo {
    fn new() -> Repo {
        let env = Env::new();
        let prod = env.keygen("prod.txt");
        let dr = env.keygen("dr.txt");
        let dev = env.keygen("dev.txt");
        for dir in [
            ".git",
            ".gitseal",
            "apps/prod",
            "apps/production",
            "apps/dev",
        ] {
            std::fs::create_dir_all(env.path(dir)).expect("mkdir");
        }
        env.write(
            ".gitseal/keys.yaml",
            &format!(
                "version: 1\ndefaultEnvironment: dev\npaths:\n- glob: apps/prod/**\n  environment: prod\n\
                 environments:\n  dev:\n    recipients: [{dev}]\n  prod:\n    recipients:\n    - {prod}\n\
                 \x20   - {{recipient: {dr}, required: true}}\n    scope: namespace\n"
            ),
        );
        for dir in ["apps/prod", "apps/production", "apps/dev"] {
            env.write(&format!("{dir}/db.yaml"), DB);
        }
        Repo { env, prod, dr, dev }
    }

    fn id(&self, recipient: &str) -> KeyId {
        recipient
            .parse::<gitseal_crypto::Recipient>()
            .expect("recipient")
            .key_id()
    }
}

/// The sorted key ids of every sealed value in a SealedSecret text.
fn key_ids(text: &str) -> Vec<Vec<KeyId>> {
    let doc = yaml(text);
    doc["spec"]["encryptedData"]
        .as_mapping()
        .expect("encryptedData")
        .values()
        .map(|v| {
            let mut ids = Envelope::parse(v.as_str().expect("string"))
                .expect("envelope")
                .key_ids();
            ids.sort_unstable();
            ids
        })
        .collect()
}

fn sorted(mut ids: Vec<KeyId>) -> Vec<KeyId> {
    ids.sort_unstable();
    ids
}

#[test]
fn seal_chooses_the_environment_by_path_and_says_so() {
    let repo = Repo::new();
    let env = &repo.env;
    let prod_ids = sorted(vec![repo.id(&repo.prod), repo.id(&repo.dr)]);

    let out = env.run(&[
        "seal",
        "-f",
        "apps/prod/db.yaml",
        "-o",
        "apps/prod/db.sealed.yaml",
    ]);
    out.exits_with(
        0,
        "sealing for environment \"prod\" (apps/prod/db.sealed.yaml matches apps/prod/** in .gitseal/keys.yaml)",
    )
    .exits_with(0, &format!("key id(s) {}, {}", prod_ids[0], prod_ids[1]));
    let sealed = env.read("apps/prod/db.sealed.yaml");
    assert!(
        sealed.contains("scope: namespace"),
        "prod's scope: {sealed}"
    );
    assert!(key_ids(&sealed).iter().all(|ids| *ids == prod_ids));

    // From a subdirectory, the same file maps the same way.
    let out = Run::new(&env.path("apps/prod"), &["seal", "-f", "db.yaml"]).out();
    out.exits_with(
        0,
        "environment \"prod\" (apps/prod/db.yaml matches apps/prod/** in ../../.gitseal/keys.yaml)",
    );
    assert!(key_ids(&out.stdout).iter().all(|ids| *ids == prod_ids));

    // Near miss: apps/production is not apps/prod; elsewhere the default.
    for file in ["apps/production/db.yaml", "apps/dev/db.yaml"] {
        let out = env.run(&["seal", "-f", file]);
        out.exits_with(0, "environment \"dev\" (the keyring's defaultEnvironment");
        assert!(key_ids(&out.stdout)
            .iter()
            .all(|ids| *ids == vec![repo.id(&repo.dev)]));
        assert!(!out.stdout.contains("scope:"), "dev is strict");
    }
    // Standard input, no -o: the default.
    env.run_stdin(&["seal"], DB.as_bytes())
        .exits_with(0, "environment \"dev\"");
    // -o decides over -f: the sealed file's place is what counts.
    let out = env.run(&[
        "seal",
        "-f",
        "apps/dev/db.yaml",
        "-o",
        "apps/prod/x.sealed.yaml",
    ]);
    out.exits_with(0, "apps/prod/x.sealed.yaml matches apps/prod/**");
    // --env wins over the path.
    env.run(&["seal", "--env", "dev", "-f", "apps/prod/db.yaml"])
        .exits_with(0, "environment \"dev\" (--env");
    // -r alone: exactly that key, no keyring, nothing announced.
    let out = env.run(&["seal", "-r", &repo.dev, "-f", "apps/prod/db.yaml"]);
    out.ok();
    assert!(!out.stderr.contains("environment"), "{}", out.stderr);
    assert!(key_ids(&out.stdout)
        .iter()
        .all(|ids| *ids == vec![repo.id(&repo.dev)]));
    // Two inputs of two environments: -o decides; without it, refused.
    env.run(&[
        "seal",
        "-f",
        "apps/prod/db.yaml",
        "-f",
        "apps/dev/db.yaml",
        "-o",
        "both.yaml",
    ])
    .exits(0);
    env.run(&["seal", "-f", "apps/prod/db.yaml", "-f", "apps/dev/db.yaml"])
        .exits_with(2, "pass --env NAME");

    // A broken keyring stops every command that reads it, naming it.
    let good = env.read(".gitseal/keys.yaml");
    env.write(
        ".gitseal/keys.yaml",
        &good.replace("environment: prod", "environment: staging"),
    );
    env.run(&["seal", "-f", "apps/prod/db.yaml", "-o", "none.yaml"])
        .exits_with(
            2,
            "keys.yaml: invalid keyring: paths: \"apps/prod/**\" maps to environment \"staging\"",
        );
    assert!(!env.path("none.yaml").exists());
}

#[test]
fn reseal_seals_each_file_for_its_environment() {
    let repo = Repo::new();
    let env = &repo.env;
    let old = env.keygen("old.txt");
    for dir in ["apps/prod", "apps/dev"] {
        env.run(&[
            "seal",
            "-r",
            &old,
            "-f",
            &format!("{dir}/db.yaml"),
            "-o",
            &format!("{dir}/db.sealed.yaml"),
        ])
        .ok();
    }
    let out = env.run(&[
        "reseal",
        "-i",
        "old.txt",
        "-f",
        "apps/prod/db.sealed.yaml",
        "-f",
        "apps/dev/db.sealed.yaml",
        "--in-place",
    ]);
    out.exits_with(
        0,
        "apps/prod/db.sealed.yaml: re-sealing for environment \"prod\"",
    )
    .exits_with(
        0,
        "apps/dev/db.sealed.yaml: re-sealing for environment \"dev\"",
    );
    let prod = env.read("apps/prod/db.sealed.yaml");
    let dev = env.read("apps/dev/db.sealed.yaml");
    let prod_ids = sorted(vec![repo.id(&repo.prod), repo.id(&repo.dr)]);
    assert!(key_ids(&prod).iter().all(|ids| *ids == prod_ids));
    assert!(key_ids(&dev)
        .iter()
        .all(|ids| *ids == vec![repo.id(&repo.dev)]));
    // Each still opens where it did (strict scope, kept), with the new keys.
    for (key, file) in [
        ("dr.txt", "apps/prod/db.sealed.yaml"),
        ("dev.txt", "apps/dev/db.sealed.yaml"),
    ] {
        let out = env.run(&["unseal", "-i", key, "-f", file]);
        out.ok();
        assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    }
}

#[test]
fn reseal_and_unseal_resolve_the_namespace_the_same_way() {
    let env = Env::new();
    let new = env.keygen("new.txt");
    env.write("db.yaml", DB);
    env.seal(&["-f", "db.yaml", "-o", "db.sealed.yaml"]).ok();
    let before = env.read("db.sealed.yaml");
    // metadata.namespace is shop; --namespace other is a conflict for both.
    env.run(&[
        "unseal",
        "-i",
        "key.txt",
        "-f",
        "db.sealed.yaml",
        "--namespace",
        "other",
    ])
    .exits_with(
        2,
        "metadata.namespace is \"shop\" but --namespace is \"other\"",
    );
    env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new,
        "-f",
        "db.sealed.yaml",
        "--namespace",
        "other",
        "--in-place",
    ])
    .exits_with(
        2,
        "metadata.namespace is \"shop\" but --namespace is \"other\"",
    );
    assert_eq!(env.read("db.sealed.yaml"), before);
    // The same namespace is fine for both.
    env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new,
        "-f",
        "db.sealed.yaml",
        "--namespace",
        "shop",
        "--in-place",
    ])
    .ok();
    env.run(&[
        "unseal",
        "-i",
        "new.txt",
        "-f",
        "db.sealed.yaml",
        "--namespace",
        "shop",
    ])
    .ok();
}

#[test]
fn merge_into_refuses_other_recipients_unless_resealing_all() {
    let env = Env::new();
    let new = env.keygen("new.txt");
    env.write("db.yaml", DB);
    env.seal(&["-f", "db.yaml", "-o", "db.sealed.yaml"]).ok();
    let file = format!("# prod database\n{}", env.read("db.sealed.yaml"));
    env.write("db.sealed.yaml", &file);
    env.write(
        "more.yaml",
        // gitseal:allow a made-up test value
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {token: s3cr3t-T0KEN}\n",
    );

    // Other recipients than the object's: refused, file untouched.
    let out = env.run(&[
        "seal",
        "-r",
        &new,
        "--merge-into",
        "db.sealed.yaml",
        "-f",
        "more.yaml",
    ]);
    out.exits_with(2, "would need two different keys to open")
        .exits_with(2, "--reseal-all");
    assert_eq!(env.read("db.sealed.yaml"), file);
    // --reseal-all needs the old identity.
    env.run(&[
        "seal",
        "-r",
        &new,
        "--merge-into",
        "db.sealed.yaml",
        "-f",
        "more.yaml",
        "--reseal-all",
    ])
    .exits(2);
    // A wrong identity: exit 3, file untouched.
    env.run(&[
        "seal",
        "-r",
        &new,
        "--merge-into",
        "db.sealed.yaml",
        "-f",
        "more.yaml",
        "--reseal-all",
        "-i",
        "new.txt",
    ])
    .exits(3);
    assert_eq!(env.read("db.sealed.yaml"), file);

    // With the old identity: every item re-sealed to the new key, comment kept.
    let out = env.run(&[
        "seal",
        "-r",
        &new,
        "--merge-into",
        "db.sealed.yaml",
        "-f",
        "more.yaml",
        "--reseal-all",
        "-i",
        "key.txt",
    ]);
    out.exits_with(0, "re-sealed 2 other item(s) of shop/db");
    let merged = env.read("db.sealed.yaml");
    assert!(merged.starts_with("# prod database\n"), "{merged}");
    let new_id = new
        .parse::<gitseal_crypto::Recipient>()
        .expect("r")
        .key_id();
    assert_eq!(key_ids(&merged), vec![vec![new_id]; 3]);
    let out = env.run(&["unseal", "-i", "new.txt", "-f", "db.sealed.yaml"]);
    out.ok();
    assert_eq!(data_item(&out.stdout, 0, "token"), b"s3cr3t-T0KEN");
    assert_eq!(data_item(&out.stdout, 0, "user"), b"admin");

    // The same recipients again: no re-seal needed, the others stay byte for byte.
    let before = env.read("db.sealed.yaml");
    env.write(
        "more.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {extra: x}\n",
    );
    env.run(&[
        "seal",
        "-r",
        &new,
        "--merge-into",
        "db.sealed.yaml",
        "-f",
        "more.yaml",
    ])
    .ok();
    let after = env.read("db.sealed.yaml");
    let changed: Vec<&str> = after.lines().filter(|l| !before.contains(*l)).collect();
    assert_eq!(changed.len(), 1, "only the new item: {changed:?}");
    assert!(changed[0].trim_start().starts_with("extra:"));
}
