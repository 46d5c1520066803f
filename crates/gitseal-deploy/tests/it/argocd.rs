//! Argo CD's health check for `gitseal.dev/SealedSecret`, run the way Argo
//! CD runs its built-in checks (`util/lua/health_test.go`): every case of
//! `health_test.yaml` feeds its `testdata/` object to `health.lua` as the
//! global `obj` and compares the returned status and message. The
//! interpreter is a real Lua 5.1 (Argo CD's gopher-lua is Lua 5.1), inside
//! the environment Argo CD gives a custom check without `useOpenLibs`: the
//! base functions, `table` and a reduced `os`, and no `string` library.

use std::path::{Path, PathBuf};
use std::process::Command;

use gitseal_deploy::{repo_root, run, to_lua, tool, yaml_documents};
use serde_json::Value;

fn check_dir() -> PathBuf {
    repo_root().join("deploy/argocd/gitseal.dev/SealedSecret")
}

/// Runs `script` on `obj` in Argo CD's sandbox; returns (status, message)
/// or the Lua error.
fn run_health(script: &Path, obj: &Value) -> Result<(String, String), String> {
    let program = format!(
        r#"
-- Argo CD without useOpenLibs: base functions, table, a safe os; no string
-- library (and so no string methods either).
local env = {{}}
for _, k in ipairs({{"assert", "error", "ipairs", "next", "pairs", "pcall",
    "rawequal", "rawget", "rawset", "select", "setmetatable", "getmetatable",
    "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION"}}) do
  env[k] = _G[k]
end
env.table = table
env.os = {{ time = os.time, date = os.date, clock = os.clock, difftime = os.difftime }}
env._G = env
env.obj = {obj}
local chunk, err = loadfile(arg[1])
if chunk == nil then
  io.stdout:write("ERROR\n", err)
  os.exit(0)
end
setfenv(chunk, env)
getmetatable("").__index = nil
local ok, hs = pcall(chunk)
if not ok then
  io.stdout:write("ERROR\n", tostring(hs))
elseif type(hs) ~= "table" then
  io.stdout:write("ERROR\nthe check returned ", type(hs), ", not a table")
else
  local status, message = tostring(hs.status), tostring(hs.message or "")
  io.stdout:write("OK\n", #status, "\n", status, message)
end
"#,
        obj = to_lua(obj)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let runner = dir.path().join("runner.lua");
    std::fs::write(&runner, program).expect("runner written");
    let lua = tool("lua5.1", "LUA51");
    let out = run(Command::new(lua).arg(&runner).arg(script), b"");
    assert!(
        out.status.success(),
        "lua5.1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    if let Some(error) = text.strip_prefix("ERROR\n") {
        return Err(error.to_string());
    }
    // OK \n <length of status> \n <status><message>
    let rest = text
        .strip_prefix("OK\n")
        .unwrap_or_else(|| panic!("unexpected runner output: {text:?}"));
    let (len, rest) = rest.split_once('\n').expect("length line");
    let len: usize = len.parse().expect("a length");
    let (status, message) = rest.split_at(len);
    Ok((status.to_string(), message.to_string()))
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = yaml_documents(&text);
    assert_eq!(docs.len(), 1, "{}: one document expected", path.display());
    docs.remove(0)
}

#[test]
fn every_health_test_case_passes_in_lua_5_1() {
    let dir = check_dir();
    let tests = load_yaml(&dir.join("health_test.yaml"));
    let cases = tests["tests"].as_array().expect("tests: a list");
    assert!(cases.len() >= 9, "the cases of health_test.yaml are read");
    let mut seen = std::collections::BTreeSet::new();
    for case in cases {
        let input = case["inputPath"].as_str().expect("inputPath");
        let want_status = case["healthStatus"]["status"].as_str().expect("status");
        let want_message = case["healthStatus"]["message"].as_str().unwrap_or("");
        let obj = load_yaml(&dir.join(input));
        let got = run_health(&dir.join("health.lua"), &obj)
            .unwrap_or_else(|e| panic!("{input}: health.lua failed: {e}"));
        assert_eq!(
            got,
            (want_status.to_string(), want_message.to_string()),
            "{input}"
        );
        seen.insert(want_status.to_string());
    }
    let all: std::collections::BTreeSet<String> = ["Healthy", "Progressing", "Degraded"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(seen, all, "every health status is covered by a case");
}

#[test]
fn every_testdata_file_is_used_by_a_case() {
    let dir = check_dir();
    let tests = std::fs::read_to_string(dir.join("health_test.yaml")).expect("read");
    for entry in std::fs::read_dir(dir.join("testdata")).expect("testdata") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            tests.contains(&format!("inputPath: testdata/{name}")),
            "testdata/{name} is not used by health_test.yaml"
        );
    }
}

#[test]
fn the_sandbox_refuses_the_string_library() {
    // The runner must fail a check that Argo CD would fail: a script that
    // uses the string library (absent without useOpenLibs).
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, body) in [
        ("global", "return { status = string.upper(\"healthy\") }"),
        ("method", "return { status = (\"healthy\"):upper() }"),
        ("io", "io.write(\"x\") return { status = \"Healthy\" }"),
    ] {
        let script = dir.path().join(format!("{name}.lua"));
        std::fs::write(&script, body).expect("write");
        let got = run_health(&script, &serde_json::json!({"metadata": {}}));
        assert!(got.is_err(), "{name}: {got:?}");
    }
}

#[test]
fn a_newer_generation_is_never_healthy() {
    // Whatever the conditions say, a status older than the spec is not
    // Healthy: Argo CD would otherwise finish a sync before the controller
    // has looked at the change.
    let dir = check_dir();
    let mut obj = load_yaml(&dir.join("testdata/healthy.yaml"));
    for generation in [4, 5, 100] {
        obj["metadata"]["generation"] = generation.into();
        let (status, _) = run_health(&dir.join("health.lua"), &obj).expect("ran");
        assert_eq!(status, "Progressing", "generation {generation}");
    }
    obj["metadata"]["generation"] = 3.into();
    let (status, _) = run_health(&dir.join("health.lua"), &obj).expect("ran");
    assert_eq!(status, "Healthy");
}

#[test]
fn strings_round_trip_through_the_lua_literal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("echo.lua");
    std::fs::write(&script, "return { status = obj.s, message = obj.t[2] }").expect("write");
    let s = "quote \" backslash \\ newline \n tab \t é ✓ \u{0} end";
    let obj = serde_json::json!({"s": s, "t": ["a", "second"], "n": null});
    let got = run_health(&script, &obj).expect("ran");
    assert_eq!(got, (s.to_string(), "second".to_string()));
}

#[test]
fn argocd_cm_snippet_holds_the_same_check() {
    // deploy/argocd/argocd-cm.yaml is what users apply; it must carry
    // health.lua byte for byte (the one the cases above test).
    let dir = repo_root().join("deploy/argocd");
    let script = std::fs::read_to_string(check_dir().join("health.lua")).expect("health.lua");
    let cm = load_yaml(&dir.join("argocd-cm.yaml"));
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let embedded = cm["data"]["resource.customizations.health.gitseal.dev_SealedSecret"]
        .as_str()
        .expect("the health key of argocd-cm");
    assert_eq!(embedded, script);
}
