//! What every handler can reach: the domain (`Services`) and what only HTTP needs.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::http::host::HostAllowlist;
use crate::http::notice::Notices;
use crate::service::Services;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Which `Host` names requests may use (DNS rebinding).
    pub hosts: Arc<HostAllowlist>,
    /// Messages for the page after a redirect (`http::notice`).
    pub notices: Notices,
    /// SHA-256 of the TLS certificate, when unitdeck serves HTTPS.
    pub tls_fingerprint: Option<Arc<str>>,
}

impl AppState {
    /// `tls_fingerprint`: the certificate's, when unitdeck serves HTTPS (shown on /settings).
    pub fn new(services: Services, tls_fingerprint: Option<String>) -> Self {
        Self {
            hosts: Arc::new(HostAllowlist::new(services.config().allowed_hosts.clone())),
            services,
            notices: Default::default(),
            tls_fingerprint: tls_fingerprint.map(Arc::from),
        }
    }
}

/// Handlers that need only the domain take `State<Services>`.
impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Self {
        state.services.clone()
    }
}
