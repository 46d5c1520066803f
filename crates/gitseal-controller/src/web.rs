//! The sealing page (`GET /`): a static page that seals Secrets in the
//! user's browser with this controller's public key, so a developer needs
//! no CLI, and the plaintext never crosses the network.
//!
//! The page is one self-contained file built from `web/src` by
//! `web/build.mjs` (`web/dist/index.html`, committed; CI checks it is what
//! the sources build to) and embedded here. Its script and stylesheet are
//! inline and run only because the Content-Security-Policy names their
//! SHA-256 hashes (`web/dist/csp.txt`, written by the same build): no other
//! script, no external request, and the only connection allowed is back to
//! this origin, for `v1/keys`. The server keeps nothing about who fetched
//! the page, sets no cookie, and never sees what the page seals.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The page, as built by `web/build.mjs`.
const PAGE: &str = include_str!("../../../web/dist/index.html");
/// Its Content-Security-Policy (one line), as built by `web/build.mjs`.
const CSP: &str = include_str!("../../../web/dist/csp.txt");

/// Whether `path` is the sealing page.
pub(crate) fn is_page(path: &str) -> bool {
    matches!(path, "/" | "/index.html")
}

/// The sealing page with its security headers.
pub(crate) fn page() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::CACHE_CONTROL, "no-cache");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    // csp.txt is one line of ASCII (checked by the tests below); were it
    // ever not a valid header value, no page is better than no policy.
    match HeaderValue::from_str(CSP.trim()) {
        Ok(csp) => {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
            resp
        }
        Err(_) => {
            let mut resp = Response::new(Full::new(Bytes::from_static(
                b"the sealing page's security policy is unusable\n",
            )));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    //! The embedded page and its policy belong together: the policy's
    //! hashes are the hashes of the page's inline script and style.

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    use super::*;

    /// The text of the one `<tag>` element of the page.
    fn element<'a>(tag: &str) -> &'a str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let start = PAGE.find(&open).map(|i| i + open.len());
        let end = PAGE.find(&close);
        assert_eq!(PAGE.matches(&open).count(), 1, "one <{tag}> in the page");
        match (start, end) {
            (Some(s), Some(e)) if s <= e => &PAGE[s..e],
            _ => panic!("no <{tag}> element in the page"),
        }
    }

    fn hash(text: &str) -> String {
        format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(text.as_bytes()))
        )
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let csp = CSP.trim();
        assert!(!csp.contains('\n') && csp.is_ascii());
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find_map(|d| d.strip_prefix(name).map(str::trim))
                .unwrap_or_else(|| panic!("no {name} in {csp}"))
        };
        assert_eq!(directive("script-src"), hash(element("script")));
        assert_eq!(directive("style-src"), hash(element("style")));
        assert_eq!(directive("default-src"), "'none'");
        assert_eq!(directive("connect-src"), "'self'");
        assert_eq!(directive("form-action"), "'none'");
        assert_eq!(directive("frame-ancestors"), "'none'");
        // The page carries the same policy (less frame-ancestors) for when
        // it is opened from disk.
        let meta = csp.replace("; frame-ancestors 'none'", "");
        assert!(
            PAGE.contains(&format!(
                "<meta http-equiv=\"Content-Security-Policy\" content=\"{meta}\">"
            )),
            "the page's <meta> policy differs from csp.txt"
        );
    }

    #[test]
    fn the_page_is_served_with_its_policy_and_no_cookie() {
        let resp = page();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert_eq!(get("content-security-policy"), CSP.trim());
        assert_eq!(get("content-type"), "text/html; charset=utf-8");
        assert_eq!(get("x-content-type-options"), "nosniff");
        assert_eq!(get("referrer-policy"), "no-referrer");
        assert_eq!(get("x-frame-options"), "DENY");
        assert!(h.get("set-cookie").is_none());
        assert!(is_page("/") && is_page("/index.html") && !is_page("/index.htm"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for needle in ["src=", "href=\"http", "@import", "url(", "<link", "<iframe"] {
            assert!(!PAGE.contains(needle), "the page contains {needle:?}");
        }
    }
}
