//! Building login requests from the configured [`AuthMethod`].
//!
//! Kept apart from the HTTP side so the parts that read credentials (the
//! service-account JWT, AppRole files, token sources) can be unit-tested
//! without a Vault server, and so every credential goes straight into a
//! [`SecretString`]. Errors name the file or variable, never its content.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{AuthMethod, TokenSource};
use crate::Error;

/// What to send to Vault to obtain a token.
pub(crate) enum LoginRequest {
    /// Use this token as is (validated with `lookup-self`).
    Token { token: SecretString },
    /// `POST auth/{mount}/login` with `role_id` and `secret_id`.
    AppRole {
        mount: String,
        role_id: SecretString,
        secret_id: SecretString,
    },
    /// `POST auth/{mount}/login` with `role` and `jwt`.
    Kubernetes {
        mount: String,
        role: String,
        jwt: SecretString,
    },
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginRequest::Token { .. } => f.write_str("LoginRequest::Token([REDACTED])"),
            LoginRequest::AppRole { mount, .. } => f
                .debug_struct("LoginRequest::AppRole")
                .field("mount", mount)
                .finish_non_exhaustive(),
            LoginRequest::Kubernetes { mount, role, .. } => f
                .debug_struct("LoginRequest::Kubernetes")
                .field("mount", mount)
                .field("role", role)
                .finish_non_exhaustive(),
        }
    }
}

impl LoginRequest {
    /// Reads the credentials named by `method` (files, environment).
    pub(crate) fn build(method: &AuthMethod) -> Result<Self, Error> {
        Self::build_with(method, |k| {
            std::env::var_os(k).and_then(|v| v.into_string().ok())
        })
    }

    pub(crate) fn build_with(
        method: &AuthMethod,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let name = method.name();
        match method {
            AuthMethod::Token(source) => {
                let raw = match source {
                    TokenSource::Value(v) => v.clone(),
                    TokenSource::Env(var) => match env(var) {
                        Some(v) => SecretString::from(v),
                        None => {
                            return Err(auth_err(
                                name,
                                format!("environment variable {var} is not set"),
                            ))
                        }
                    },
                    TokenSource::File(path) => read_secret_file(name, path, "token file")?,
                };
                Ok(LoginRequest::Token {
                    token: clean_credential(name, &raw, "token")?,
                })
            }
            AuthMethod::AppRole {
                mount,
                role_id_file,
                secret_id_file,
            } => {
                check_auth_mount(name, mount)?;
                let role_id = read_secret_file(name, role_id_file, "role id file")?;
                let secret_id = read_secret_file(name, secret_id_file, "secret id file")?;
                Ok(LoginRequest::AppRole {
                    mount: mount.clone(),
                    role_id: clean_credential(name, &role_id, "role id")?,
                    secret_id: clean_credential(name, &secret_id, "secret id")?,
                })
            }
            AuthMethod::Kubernetes {
                mount,
                role,
                jwt_file,
            } => {
                check_auth_mount(name, mount)?;
                if role.trim().is_empty() {
                    return Err(auth_err(name, "no Vault role configured".into()));
                }
                let jwt = read_secret_file(name, jwt_file, "service-account token file")?;
                Ok(LoginRequest::Kubernetes {
                    mount: mount.clone(),
                    role: role.clone(),
                    jwt: clean_credential(name, &jwt, "service-account token")?,
                })
            }
        }
    }
}

fn auth_err(method: &'static str, detail: String) -> Error {
    Error::Auth { method, detail }
}

fn check_auth_mount(method: &'static str, mount: &str) -> Result<(), Error> {
    let ok = !mount.is_empty()
        && mount.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(auth_err(
            method,
            format!(
                "invalid auth mount `{}`",
                crate::reference::sanitize_for_message(mount)
            ),
        ))
    }
}

fn read_secret_file(method: &'static str, path: &Path, what: &str) -> Result<SecretString, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        auth_err(
            method,
            format!("cannot read {what} {}: {}", path.display(), e.kind()),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut bytes);
        auth_err(
            method,
            format!("{what} {} is not UTF-8 text", path.display()),
        )
    })?;
    Ok(SecretString::from(text))
}

/// Trims surrounding whitespace and checks the credential can travel in an
/// HTTP header or JSON body: non-empty, visible ASCII only. (vaultrs puts
/// the token in a header and would panic on anything else.)
fn clean_credential(
    method: &'static str,
    raw: &SecretString,
    what: &str,
) -> Result<SecretString, Error> {
    let trimmed = raw.expose_secret().trim();
    if trimmed.is_empty() {
        return Err(auth_err(method, format!("the {what} is empty")));
    }
    if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(auth_err(
            method,
            format!("the {what} contains spaces, control or non-ASCII characters"),
        ));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn auth_detail(r: Result<LoginRequest, Error>) -> String {
        match r {
            Err(Error::Auth { detail, .. }) => detail,
            other => panic!("expected Auth error, got {other:?}"),
        }
    }

    #[test]
    fn kubernetes_login_reads_the_jwt_file_with_role_and_mount() {
        let dir = tempfile::tempdir().unwrap();
        let jwt = dir.path().join("token");
        std::fs::write(&jwt, "eyJhbGciOi.eyJzdWIi.c2ln\n").unwrap();
        let method = AuthMethod::Kubernetes {
            mount: "k8s/prod".into(),
            role: "gitseal".into(),
            jwt_file: jwt.clone(),
        };
        match LoginRequest::build_with(&method, no_env).unwrap() {
            LoginRequest::Kubernetes { mount, role, jwt } => {
                assert_eq!(mount, "k8s/prod");
                assert_eq!(role, "gitseal");
                assert_eq!(jwt.expose_secret(), "eyJhbGciOi.eyJzdWIi.c2ln");
            }
            other => panic!("{other:?}"),
        }
        // Re-read at every login: a rotated projected token is picked up.
        std::fs::write(&jwt, "rotated.jwt.value").unwrap();
        match LoginRequest::build_with(&method, no_env).unwrap() {
            LoginRequest::Kubernetes { jwt, .. } => {
                assert_eq!(jwt.expose_secret(), "rotated.jwt.value")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kubernetes_defaults() {
        match AuthMethod::kubernetes("ctl") {
            AuthMethod::Kubernetes {
                mount,
                role,
                jwt_file,
            } => {
                assert_eq!(mount, "kubernetes");
                assert_eq!(role, "ctl");
                assert_eq!(
                    jwt_file,
                    PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kubernetes_login_errors_name_the_file_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let m = |mount: &str, role: &str, jwt_file: PathBuf| AuthMethod::Kubernetes {
            mount: mount.into(),
            role: role.into(),
            jwt_file,
        };
        assert_eq!(
            auth_detail(LoginRequest::build_with(
                &m("kubernetes", "r", missing.clone()),
                no_env
            )),
            format!(
                "cannot read service-account token file {}: entity not found",
                missing.display()
            )
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        assert_eq!(
            auth_detail(LoginRequest::build_with(
                &m("kubernetes", "r", empty.clone()),
                no_env
            )),
            "the service-account token is empty"
        );
        let spaced = dir.path().join("spaced");
        std::fs::write(&spaced, "abc def-secret-part").unwrap();
        let d = auth_detail(LoginRequest::build_with(
            &m("kubernetes", "r", spaced.clone()),
            no_env,
        ));
        assert_eq!(
            d,
            "the service-account token contains spaces, control or non-ASCII characters"
        );
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(auth_detail(LoginRequest::build_with(
            &m("kubernetes", "r", binary),
            no_env
        ))
        .ends_with("is not UTF-8 text"));
        assert_eq!(
            auth_detail(LoginRequest::build_with(
                &m("../sys", "r", spaced.clone()),
                no_env
            )),
            "invalid auth mount `../sys`"
        );
        assert_eq!(
            auth_detail(LoginRequest::build_with(
                &m("kubernetes", " ", spaced),
                no_env
            )),
            "no Vault role configured"
        );
    }

    #[test]
    fn approle_reads_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (rid, sid) = (dir.path().join("rid"), dir.path().join("sid"));
        std::fs::write(&rid, "role-123\n").unwrap();
        std::fs::write(&sid, "secret-456").unwrap();
        match LoginRequest::build_with(&AuthMethod::approle(&rid, &sid), no_env).unwrap() {
            LoginRequest::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                assert_eq!(mount, "approle");
                assert_eq!(role_id.expose_secret(), "role-123");
                assert_eq!(secret_id.expose_secret(), "secret-456");
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&sid).unwrap();
        assert!(auth_detail(LoginRequest::build_with(
            &AuthMethod::approle(&rid, &sid),
            no_env
        ))
        .starts_with("cannot read secret id file"));
    }

    #[test]
    fn token_sources() {
        let v = AuthMethod::Token(TokenSource::Value(" s.abc \n".into()));
        match LoginRequest::build_with(&v, no_env).unwrap() {
            LoginRequest::Token { token } => assert_eq!(token.expose_secret(), "s.abc"),
            other => panic!("{other:?}"),
        }
        let e = AuthMethod::Token(TokenSource::Env("MY_TOKEN".into()));
        match LoginRequest::build_with(&e, |k| (k == "MY_TOKEN").then(|| "s.env".to_string()))
            .unwrap()
        {
            LoginRequest::Token { token } => assert_eq!(token.expose_secret(), "s.env"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            auth_detail(LoginRequest::build_with(&e, no_env)),
            "environment variable MY_TOKEN is not set"
        );
        let bad = AuthMethod::Token(TokenSource::Value("s.abc\r\nX-Injected: 1".into()));
        assert!(
            auth_detail(LoginRequest::build_with(&bad, no_env)).contains("control or non-ASCII")
        );
    }

    #[test]
    fn debug_redacts_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let jwt = dir.path().join("t");
        std::fs::write(&jwt, "jwt-canary-1").unwrap();
        let k = LoginRequest::build_with(
            &AuthMethod::Kubernetes {
                mount: "kubernetes".into(),
                role: "r".into(),
                jwt_file: jwt.clone(),
            },
            no_env,
        )
        .unwrap();
        let t = LoginRequest::build_with(
            &AuthMethod::Token(TokenSource::Value("tok-canary-2".into())),
            no_env,
        )
        .unwrap();
        let a = LoginRequest::build_with(&AuthMethod::approle(&jwt, &jwt), no_env).unwrap();
        let out = format!("{k:?} {t:?} {a:?}");
        assert!(!out.contains("canary"), "{out}");
        assert!(out.contains("role: \"r\""), "{out}");
    }
}
