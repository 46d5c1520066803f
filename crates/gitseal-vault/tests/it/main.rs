//! Integration tests of gitseal-vault against a real OpenBao dev server.

mod auth;
mod failures;
mod kubernetes;
mod leaks;
mod noise;
mod reads;
mod tenancy;

use std::io::Write;
use std::sync::{Arc, Mutex};

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{ExposeSecret as _, Session, VaultClient, VaultRef};

/// A client using the dev server's root token, without the shared cache
/// (so counters show session behaviour alone).
pub async fn root_client(bao: &Bao) -> VaultClient {
    VaultClient::new(bao.root_config()).await.expect("client")
}

pub fn r(s: &str) -> VaultRef {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The value `reference` resolves to through `session`; panics (naming the
/// reference and the error) when it does not resolve.
pub async fn value(session: &Session, reference: &VaultRef) -> String {
    session
        .resolve(reference)
        .await
        .unwrap_or_else(|e| panic!("{reference}: {e}"))
        .expose_secret()
        .to_string()
}

/// Everything logged through [`dispatch`](LogCapture::dispatch), as text.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// A subscriber writing every event at TRACE and above, from every
    /// crate, into this capture (no colours).
    pub fn dispatch(&self) -> tracing::Dispatch {
        let writer = self.clone();
        tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}
