//! Integration tests of gitseal-template: every filter and function, the
//! sandbox's limits, and errors that never carry a value.

use std::collections::BTreeMap;

use gitseal_template::{check, render, Error, Limits, Place, SaltKey};
use secrecy::{ExposeSecret, SecretSlice};

const PLACE: Place<'static> = Place {
    namespace: "app",
    name: "db",
};

fn inputs(items: &[(&str, &[u8])]) -> BTreeMap<String, SecretSlice<u8>> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_string(), SecretSlice::from(v.to_vec())))
        .collect()
}

fn render_with(
    template: &str,
    items: &[(&str, &[u8])],
    limits: &Limits,
    salt: &SaltKey,
) -> Result<Vec<u8>, Error> {
    let templates = BTreeMap::from([("out".to_string(), template.to_string())]);
    render(&templates, &inputs(items), PLACE, salt, limits)
        .map(|m| m["out"].expose_secret().to_vec())
}

fn one(template: &str, items: &[(&str, &[u8])]) -> Result<String, Error> {
    render_with(template, items, &Limits::default(), &SaltKey::new([7; 32]))
        .map(|b| String::from_utf8(b).unwrap_or_else(|_| panic!("not UTF-8")))
}

fn ok(template: &str, items: &[(&str, &[u8])]) -> String {
    one(template, items).unwrap_or_else(|e| panic!("{template}: {e}"))
}

const PW: &[u8] = b"p@ss/w:rd \"x\"";

#[test]
fn database_url() {
    assert_eq!(
        ok(
            "postgres://{{ user }}:{{ password | urlencode }}@db:5432/app",
            &[("user", b"app"), ("password", PW)]
        ),
        // gitseal:allow a made-up password in the expected output of a template test
        "postgres://app:p%40ss%2Fw%3Ard%20%22x%22@db:5432/app"
    );
}

#[test]
fn urlencode_path_keeps_slashes_and_maps_become_queries() {
    assert_eq!(
        ok("{{ p | urlencode_path }}", &[("p", b"a b/c")]),
        "a%20b/c"
    );
    assert_eq!(
        ok(
            "{{ {'u': user, 'x': 'a&b'} | urlencode }}",
            &[("user", b"me")]
        ),
        "u=me&x=a%26b"
    );
}

#[test]
fn base64_round_trip_and_binary_inputs() {
    assert_eq!(ok("{{ v | b64enc }}", &[("v", b"hello")]), "aGVsbG8=");
    assert_eq!(ok("{{ v | b64dec }}", &[("v", b"aGVsbG8=")]), "hello");
    assert_eq!(ok("{{ v | b64dec }}", &[("v", b"aGVsbG8")]), "hello");
    assert_eq!(ok("{{ v | b64dec | b64enc }}", &[("v", b"/w==")]), "/w==");
    // A binary input is usable through b64enc but never printed raw.
    assert_eq!(
        ok("{{ inputs['k.bin'] | b64enc }}", &[("k.bin", &[0xff, 0])]),
        "/wA="
    );
    let e = one("{{ v }}", &[("v", &[0xff, 0xfe])]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, line: Some(1), .. }) if message.contains("b64enc")),
        "{e:?}"
    );
    let e = one("{{ v | b64dec }}", &[("v", b"not base64!")]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message == "b64dec: the value is not valid base64"),
        "{e:?}"
    );
}

#[test]
fn json_quoting() {
    assert_eq!(ok("{{ v | tojson }}", &[("v", PW)]), r#""p@ss/w:rd \"x\"""#);
    assert_eq!(ok("{{ v | json }}", &[("v", b"<&>")]), r#""<&>""#);
    assert_eq!(
        ok(
            "{{ {'a': v, 'b': [1, true, none]} | tojson(indent=2) }}",
            &[("v", b"x")]
        ),
        "{\n  \"a\": \"x\",\n  \"b\": [\n    1,\n    true,\n    null\n  ]\n}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&ok(
        "{\"password\": {{ v | tojson }}}",
        &[("v", b"a\"b\\c\n\x01")],
    ))
    .unwrap_or_default();
    assert_eq!(parsed["password"], "a\"b\\c\n\x01");
}

#[test]
fn yaml_quoting() {
    let tricky = "a: b\n# not a comment\u{85}'\"\\ \u{2028}";
    let out = ok("password: {{ v | yaml }}\n", &[("v", tricky.as_bytes())]);
    assert!(!out.trim_end().contains('\n'), "one line: {out:?}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap_or_default();
    assert_eq!(doc["password"].as_str(), Some(tricky));
    let out = ok(
        "db:\n  {{ {'user': u, 'port': 5432} | toyaml | indent(2) }}\n",
        &[("u", b"true")],
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap_or_default();
    assert_eq!(doc["db"]["user"].as_str(), Some("true"), "{out}");
    assert_eq!(doc["db"]["port"].as_u64(), Some(5432));
}

#[test]
fn trim_case_indent_and_nindent() {
    assert_eq!(ok("[{{ v | trim }}]", &[("v", b"  x \n")]), "[x]");
    assert_eq!(ok("[{{ v | trim('x') }}]", &[("v", b"xxaxx")]), "[a]");
    assert_eq!(
        ok("{{ v | lower }}{{ v | upper }}", &[("v", b"aB")]),
        "abAB"
    );
    assert_eq!(
        ok("{{ v | indent(2) }}", &[("v", b"a\nb\n\nc")]),
        "a\n  b\n\n  c"
    );
    assert_eq!(
        ok(
            "{{ v | indent(2, first=true, blank=true) }}",
            &[("v", b"a\n\nb")]
        ),
        "  a\n  \n  b"
    );
    assert_eq!(
        ok("key:{{ v | nindent(4) }}", &[("v", b"a\nb")]),
        "key:\n    a\n    b"
    );
    let e = one("{{ v | indent(100000) }}", &[("v", b"a")]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("more than 256")),
        "{e:?}"
    );
}

#[test]
fn sha256_join_default_length() {
    assert_eq!(
        ok("{{ v | sha256 }}", &[("v", b"abc")]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        ok("{{ [a, b] | join(',') }}", &[("a", b"1"), ("b", b"2")]),
        "1,2"
    );
    assert_eq!(ok("{{ a | length }}", &[("a", b"four")]), "4");
    assert_eq!(
        ok("{{ inputs.missing | default('dflt') }}", &[("a", b"")]),
        "dflt"
    );
    assert_eq!(
        ok(
            "{% if inputs.missing is defined %}yes{% else %}no{% endif %}",
            &[("a", b"")]
        ),
        "no"
    );
}

#[test]
fn htpasswd_is_deterministic_verifies_and_is_keyed() {
    let t = "{{ htpasswd('admin', password, cost=4) }}\n";
    let items: &[(&str, &[u8])] = &[("password", b"s3cret")];
    let key = SaltKey::new([1; 32]);
    let a = render_with(t, items, &Limits::default(), &key).unwrap_or_default();
    let b = render_with(t, items, &Limits::default(), &key).unwrap_or_default();
    assert_eq!(a, b, "two renders must be byte-identical");
    let line = String::from_utf8(a.clone()).unwrap_or_default();
    let hash = line.trim_end().strip_prefix("admin:").unwrap_or_default();
    assert!(hash.starts_with("$2y$04$"), "{line}");
    assert_eq!(bcrypt::verify("s3cret", hash).ok(), Some(true));
    assert_eq!(bcrypt::verify("wrong", hash).ok(), Some(false));
    // Another key, or another object, gives another salt.
    let other =
        render_with(t, items, &Limits::default(), &SaltKey::new([2; 32])).unwrap_or_default();
    assert_ne!(a, other);
    let templates = BTreeMap::from([("out".to_string(), t.to_string())]);
    let moved = render(
        &templates,
        &inputs(items),
        Place {
            namespace: "other",
            name: "db",
        },
        &key,
        &Limits::default(),
    )
    .map(|m| m["out"].expose_secret().to_vec())
    .unwrap_or_default();
    assert_ne!(a, moved);
    // The bcrypt filter gives the hash alone; the default cost is 10.
    let h = ok("{{ password | bcrypt }}", &[("password", b"x")]);
    assert!(h.starts_with("$2y$10$") && h.len() == 60, "{h}");
}

#[test]
fn bcrypt_refusals() {
    let e = one("{{ htpasswd('a', p, cost=20) }}", &[("p", b"x")]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("outside 4..=14")),
        "{e:?}"
    );
    let long = [b'x'; 73];
    let e = one("{{ p | bcrypt(cost=4) }}", &[("p", &long)]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("72 bytes")),
        "{e:?}"
    );
    let e = one("{{ htpasswd('a:b', p, cost=4) }}", &[("p", b"x")]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("`:`")),
        "{e:?}"
    );
    // Nine hashes at cost 10 are more work than one object may ask for.
    let many = "{% for i in [1,2,3,4,5,6,7,8,9] %}{{ p | bcrypt }}{% endfor %}";
    let e = one(many, &[("p", b"x")]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("more hashing")),
        "{e:?}"
    );
}

#[test]
fn dockerconfigjson() {
    let out = ok(
        "{{ dockerconfigjson('ghcr.io', user, token) }}",
        &[("user", b"bot"), ("token", b"ghp_x\"y")],
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let entry = &doc["auths"]["ghcr.io"];
    assert_eq!(entry["username"], "bot");
    assert_eq!(entry["password"], "ghp_x\"y");
    assert_eq!(entry["auth"], "Ym90OmdocF94Ink=");
    assert!(entry.get("email").is_none());
    let out = ok("{{ dockerconfigjson('r', 'u', 'p', email='a@b') }}", &[]);
    assert!(out.contains("\"email\":\"a@b\""), "{out}");
}

#[test]
fn config_files_come_out_as_written() {
    let t = "db:\n  user: {{ user | yaml }}\n{% if inputs.tls is defined %}\n  tls: true\n{% endif %}\n  password: {{ password | yaml }}\n";
    assert_eq!(
        ok(t, &[("user", b"app"), ("password", b"pw")]),
        "db:\n  user: \"app\"\n  password: \"pw\"\n"
    );
    // No HTML escaping, whatever the key's extension.
    let templates = BTreeMap::from([("index.html".to_string(), "{{ v }}".to_string())]);
    let out = render(
        &templates,
        &inputs(&[("v", b"<a&b>")]),
        PLACE,
        &SaltKey::offline(),
        &Limits::default(),
    )
    .unwrap_or_default();
    assert_eq!(
        out.get("index.html").map(|v| v.expose_secret().to_vec()),
        Some(b"<a&b>".to_vec())
    );
}

#[test]
fn unknown_inputs_are_errors_with_their_line() {
    let e = one(
        "line one\n{% if false %}{{ pasword }}{% endif %}",
        &[("password", b"x")],
    )
    .err();
    assert_eq!(
        e,
        Some(Error::UnknownInput {
            key: "out".into(),
            line: Some(2),
            names: vec!["pasword".into()]
        })
    );
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(msg, "template \"out\", line 2: unknown input \"pasword\": the object has no such encryptedData or vaultData item (reach keys that are not names as inputs[\"key\"])");
    // Inputs reached through `inputs` may be optional: checked when used.
    let e = one("a\n{{ inputs['tls.key'] }}", &[("tls.crt", b"x")]).err();
    assert_eq!(
        e,
        Some(Error::Undefined {
            key: "out".into(),
            line: Some(2)
        })
    );
    // Computed keys are checked when rendered.
    let e = one("{% set k = 'no' %}\n{{ inputs[k] }}", &[("a", b"x")]).err();
    assert_eq!(
        e,
        Some(Error::Undefined {
            key: "out".into(),
            line: Some(2)
        })
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let e = one("ok\nok\n{{ user | }}", &[("user", b"x")]).err();
    assert!(
        matches!(&e, Some(Error::Syntax { line: Some(3), .. })),
        "{e:?}"
    );
    let e = one("{% for x in y %}", &[("y", b"x")]).err();
    assert!(matches!(&e, Some(Error::Syntax { .. })), "{e:?}");
    let e = one("{{ user | nosuchfilter }}", &[("user", b"x")]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("nosuchfilter")),
        "{e:?}"
    );
}

#[test]
fn strings_built_without_end_run_out_of_fuel_before_memory() {
    // Forty doublings of 1 KB would be a terabyte: the budget stops them
    // (MiniJinja charges fuel for bytes created, before allocating).
    let mut t = String::from("{% set s0 = v %}");
    for i in 1..=40 {
        t.push_str(&format!("{{% set s{i} = s{} ~ s{} %}}", i - 1, i - 1));
    }
    t.push_str("{{ s40 | length }}");
    let kb = vec![b'x'; 1024];
    let e = one(&t, &[("v", &kb)]).err();
    assert!(
        matches!(&e, Some(Error::OutOfFuel { fuel: 250_000, .. })),
        "{e:?}"
    );
    let e = one("x\n{{ (v * 100000000) | length }}", &[("v", &kb)]).err();
    assert!(e.is_some(), "a 100 GB repeat must fail");
    // Operators are fine within the budget.
    assert_eq!(
        ok(
            "{{ user ~ ':' ~ password }}",
            &[("user", b"u"), ("password", b"p")]
        ),
        "u:p"
    );
    assert_eq!(ok("a+b~c*d {{ '+~*%' }}", &[]), "a+b~c*d +~*%");
}

#[test]
fn a_runaway_template_runs_out_of_fuel() {
    let big = vec![b'x'; 10_000];
    let t = "{% for a in v %}{% for b in v %}{% endfor %}{% endfor %}";
    let e = one(t, &[("v", &big)]).err();
    assert!(
        matches!(
            &e,
            Some(Error::OutOfFuel {
                line: Some(1),
                fuel: 250_000,
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn output_and_work_are_bounded() {
    let limits = Limits {
        max_output: 1000,
        ..Limits::default()
    };
    let big = vec![b'x'; 600];
    let templates = BTreeMap::from([
        ("a".to_string(), "{{ v }}".to_string()),
        ("b".to_string(), "{{ v }}".to_string()),
    ]);
    let e = render(
        &templates,
        &inputs(&[("v", &big)]),
        PLACE,
        &SaltKey::offline(),
        &limits,
    )
    .err();
    assert_eq!(
        e,
        Some(Error::OutputTooLarge {
            key: "b".into(),
            line: None,
            limit: 1000
        })
    );
    // Filters feeding each other are charged: 40 x 256 KiB through b64enc.
    let quarter = vec![b'y'; 256 * 1024];
    let t = "{% for i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30] %}{% set x = v | b64enc %}{% endfor %}";
    let e = one(t, &[("v", &quarter)]).err();
    assert!(
        matches!(&e, Some(Error::Render { message, .. }) if message.contains("filters produced more than")),
        "{e:?}"
    );
}

#[test]
fn errors_never_hold_values() {
    let secret = b"hunter2-SECRET";
    for t in [
        "{{ password - 1 }}",
        "{{ password | int }}",
        "{{ password.attr }}",
        "{{ password[99] }}",
        "{{ password | indent(password) }}",
        "{{ password.x.y }}",
        "{{ (password | b64dec) }}",
        "{% for x in password %}{{ x.y }}{% endfor %}",
    ] {
        let e = one(t, &[("password", secret)]).err();
        let msg = e.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(e.is_some(), "{t} should fail");
        assert!(
            !msg.contains("hunter2") && !format!("{e:?}").contains("hunter2"),
            "{t}: {msg}"
        );
    }
}

#[test]
fn check_reports_reads_without_inputs() {
    let r = check("url", "{{ user }}:{{ inputs['db-password'] | urlencode }}").unwrap_or_default();
    assert_eq!(r.names.keys().collect::<Vec<_>>(), ["user"]);
    assert_eq!(r.optional.keys().collect::<Vec<_>>(), ["db-password"]);
    let long = "x".repeat(gitseal_template::MAX_TEMPLATE_LEN + 1);
    assert!(matches!(check("k", &long), Err(Error::TooLong { .. })));
}
